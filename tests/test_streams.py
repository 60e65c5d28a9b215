"""Pictures through pipes: -i - and -o -, and a shell's <(...) and >(...) paths
(FIFOs here), run as a user runs them."""
from __future__ import annotations

import io
import os
import pty
import subprocess
import threading

import numpy as np
import pytest
from PIL import Image

from conftest import picture
from test_cli import CMD, FAST


def png_bytes(h: int, w: int, seed: int = 0) -> bytes:
    out = io.BytesIO()
    Image.fromarray(picture(h, w, seed=seed)).save(out, "PNG")
    return out.getvalue()


def command(tmp_path, *args, stdin=b"", **kw) -> subprocess.CompletedProcess:
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}  # to see that the stand-in files go
    return subprocess.run([CMD, *map(str, args), *FAST], input=stdin, capture_output=True, env=env, timeout=300, **kw)


def test_a_picture_from_standard_input_to_a_file(tmp_path):
    proc = command(tmp_path, "-i", "-", "-o", tmp_path / "out.png", stdin=png_bytes(10, 12))
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "out.png") as im:
        assert im.size == (24, 20)
    assert os.listdir(tmp_path / "tmp") == []


def test_a_picture_to_standard_output_in_the_format_asked(tmp_path):
    Image.fromarray(picture(10, 12)).save(tmp_path / "in.png")
    proc = command(tmp_path, "-i", tmp_path / "in.png", "-o", "-", "-f", "jpg")
    assert proc.returncode == 0, proc.stderr
    with Image.open(io.BytesIO(proc.stdout)) as im:
        assert im.format == "JPEG" and im.size == (24, 20)
    assert command(tmp_path, "-i", tmp_path / "in.png", "-o", "-").stdout.startswith(b"\x89PNG")  # png by default


def test_standard_input_to_standard_output_is_the_same_picture_as_files_give(tmp_path):
    data = png_bytes(9, 11, seed=3)
    (tmp_path / "in.png").write_bytes(data)
    proc = command(tmp_path, "-i", "-", "-o", "-", "-v", stdin=data)
    assert proc.returncode == 0, proc.stderr
    assert "standard input -> standard output done" in proc.stderr.decode()
    assert command(tmp_path, "-i", tmp_path / "in.png", "-o", tmp_path / "out.png").returncode == 0
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(proc.stdout))), np.asarray(Image.open(tmp_path / "out.png")))


def test_what_is_no_picture_is_one_line_and_nothing_reaches_standard_output(tmp_path):
    for given, said in ((b"", "standard input is empty: no picture came"),
                        (b"no picture", "standard input: not a picture")):
        proc = command(tmp_path, "-i", "-", "-o", "-", stdin=given)
        assert proc.returncode == 1 and proc.stdout == b""
        said_here = proc.stderr.decode()
        assert said_here.startswith(f"ncnn-sr: error: {said}") and said_here.count("\n") == 1
        assert "tmp" not in said_here  # the stand-in file is not named
    assert os.listdir(tmp_path / "tmp") == []


def test_fifos_as_a_shell_gives_them_for_process_substitution(tmp_path):
    data = png_bytes(8, 10)
    os.mkfifo(tmp_path / "in")
    os.mkfifo(tmp_path / "out")
    received = []

    def feed():
        with open(tmp_path / "in", "wb") as f:
            f.write(data)

    def drain():
        with open(tmp_path / "out", "rb") as f:
            received.append(f.read())

    threads = [threading.Thread(target=feed), threading.Thread(target=drain)]
    for t in threads:
        t.start()
    proc = command(tmp_path, "-i", tmp_path / "in", "-o", tmp_path / "out", "-f", "webp")
    for t in threads:
        t.join(30)
    assert proc.returncode == 0, proc.stderr
    with Image.open(io.BytesIO(received[0])) as im:
        assert im.format == "WEBP" and im.size == (20, 16)


def test_a_folder_and_a_stream_do_not_go_together(tmp_path):
    (tmp_path / "pics").mkdir()
    Image.fromarray(picture(6, 6)).save(tmp_path / "pics" / "a.png")
    proc = command(tmp_path, "-i", tmp_path / "pics", "-o", "-")
    assert proc.returncode == 1 and b"the pictures of a folder cannot all go to standard output" in proc.stderr
    proc = command(tmp_path, "-i", "-", "-o", tmp_path / "pics", stdin=png_bytes(6, 6))
    assert proc.returncode == 1 and b"needs an output file's name (or -o -), not a folder" in proc.stderr
    assert os.listdir(tmp_path / "pics") == ["a.png"]


def test_standard_output_closed_early_is_one_line(tmp_path):
    Image.fromarray(picture(200, 220, seed=5)).save(tmp_path / "in.png")  # far more than a pipe's buffer out
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([CMD, "-i", tmp_path / "in.png", "-o", "-", *FAST], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # a reader that went away, as `| head -c 0` does
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1 and err.decode().strip() == (
        "ncnn-sr: error: standard output was closed before the picture was written")
    assert [p for p in os.listdir(tmp_path) if p.startswith("ncnn-sr-stream-")] == []


def test_a_terminal_is_refused_for_pictures(tmp_path):
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    main, other = pty.openpty()
    try:
        proc = subprocess.run([CMD, "-i", tmp_path / "in.png", "-o", "-", *FAST], stdout=other, stderr=subprocess.PIPE,
                              timeout=300)
        assert proc.returncode == 1 and b"standard output is a terminal" in proc.stderr
        proc = subprocess.run([CMD, "-i", "-", "-o", tmp_path / "o.png", *FAST], stdin=other, capture_output=True,
                              timeout=300)
        assert proc.returncode == 1 and b"standard input is a terminal" in proc.stderr
    finally:
        os.close(main)
        os.close(other)


def test_a_video_takes_files_not_streams(tmp_path):
    proc = subprocess.run([CMD, "video", "-i", "-", "-o", tmp_path / "o.mp4"], input=b"x", capture_output=True)
    assert proc.returncode == 1 and b"a video is read from a file, not standard input" in proc.stderr
    proc = subprocess.run([CMD, "video", "-i", tmp_path / "in.mp4", "-o", "-"], capture_output=True)
    assert proc.returncode == 1 and b"a video is written to a file, not standard output" in proc.stderr


def test_a_picture_with_transparency_asked_as_jpg_comes_out_as_png_with_a_warning(tmp_path):
    rgba = picture(8, 9, 4)
    rgba[..., 3] = 90
    out = io.BytesIO()
    Image.fromarray(rgba).save(out, "PNG")
    proc = command(tmp_path, "-i", "-", "-o", "-", "-f", "jpg", stdin=out.getvalue())
    assert proc.returncode == 0, proc.stderr
    assert "writing standard output (as png)" in proc.stderr.decode()
    with Image.open(io.BytesIO(proc.stdout)) as im:
        assert im.format == "PNG" and im.mode == "RGBA"


def test_closed_standard_streams_are_one_line(tmp_path):
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    proc = subprocess.run([CMD, "-i", "-", "-o", tmp_path / "o.png", *FAST], stdin=subprocess.DEVNULL,
                          capture_output=True, pass_fds=(), close_fds=True,
                          preexec_fn=lambda: os.close(0))
    assert proc.returncode == 1 and proc.stderr.decode().strip() == "ncnn-sr: error: standard input is closed"
    proc = subprocess.run([CMD, "-i", tmp_path / "in.png", "-o", "-", *FAST], stderr=subprocess.PIPE,
                          preexec_fn=lambda: os.close(1))
    assert proc.returncode == 1 and proc.stderr.decode().strip() == "ncnn-sr: error: standard output is closed"


def test_dev_stdout_is_standard_output_even_redirected_to_a_file(tmp_path):
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    with open(tmp_path / "out.webp", "wb") as f:
        proc = subprocess.run([CMD, "-i", tmp_path / "in.png", "-o", "/dev/stdout", "-f", "webp", *FAST], stdout=f,
                              stderr=subprocess.PIPE)
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "out.webp") as im:
        assert im.format == "WEBP" and im.size == (14, 12)


def test_a_terminal_named_by_its_path_is_refused_too(tmp_path):
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    main, other = pty.openpty()
    try:
        proc = subprocess.run([CMD, "-i", tmp_path / "in.png", "-o", os.ttyname(other), *FAST], capture_output=True,
                              timeout=300)
        assert proc.returncode == 1 and f"{os.ttyname(other)} is a terminal".encode() in proc.stderr
        proc = subprocess.run([CMD, "-i", "/dev/stdin", "-o", tmp_path / "o.png", *FAST], stdin=other,
                              capture_output=True, timeout=300)
        assert proc.returncode == 1 and b"standard input is a terminal" in proc.stderr
    finally:
        os.close(main)
        os.close(other)


def test_standard_input_past_the_largest_picture_is_refused_before_the_disk_fills(tmp_path, monkeypatch):
    from ncnn_sr import streams
    from ncnn_sr.errors import InputError

    class Endless(io.RawIOBase):
        def readinto(self, b):
            b[:] = bytes(len(b))
            return len(b)

    monkeypatch.setattr(streams, "MAX_STREAM_BYTES", 5 << 20)
    monkeypatch.setattr(streams.sys, "stdin", type("Stdin", (), {"buffer": Endless(), "isatty": lambda self: False})())
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(streams.tempfile, "tempdir", None)
    with pytest.raises(InputError, match="standard input holds more than"):
        streams.Streams("-", tmp_path / "o.png", None)
    assert os.listdir(tmp_path) == []
