"""Pictures through pipes: -i - and -o -, and a shell's <(...) and >(...) paths
(FIFOs here), run as a user runs them."""
from __future__ import annotations

import io
import os
import pty
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time

import av
import numpy as np
import pytest
from PIL import Image

from conftest import ctrl_c_once_made, picture
from media import make_clip
from test_batch_cli import DROPIN
from test_cli import CMD, FAST
from test_video import PHONE_KEYS, remux_with, with_cover_art


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


@pytest.mark.parametrize("drop_in, args, said", [
    (False, ["-i", "text.png"], "text.png: not a picture"),
    (False, ["-i", "missing.png"], "missing.png: file not found"),
    (False, ["-i", "in.png", "-t", "5"], "invalid tilesize argument"),
    (False, ["-i", ""], "-i is empty"),
    (False, ["-i", "pics"], "the pictures of a folder cannot all go to"),
    (True, ["-i", "text.png"], "text.png failed: not a picture"),
    (True, ["-i", "in.png", "-t", "5"], "invalid tilesize argument"),
    ("video", ["-i", ""], "-i is empty"),
    ("video", ["-i", "pics"], "the videos of a folder cannot all go to"),
])
def test_a_fifo_given_as_the_output_of_a_failed_run_is_closed_for_its_reader(drop_in, args, said, tmp_path):
    # found by a user audit: -o >(...) or a named pipe, and a run that failed, left its
    # reader (cat pipe > out.png) waiting for ever for a writer that never came.
    (tmp_path / "pics").mkdir()
    Image.fromarray(picture(6, 6)).save(tmp_path / "pics" / "a.png")
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    (tmp_path / "text.png").write_text("not a picture")
    fifo = tmp_path / ("out.mkv" if drop_in == "video" else "out.png")
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()), daemon=True)
    reader.start()
    cmd = {True: [DROPIN, "-s", "2", "-g", "-1"], False: [CMD, *FAST], "video": [CMD, "video", *FAST]}[drop_in]
    proc = subprocess.run([*cmd, *args, "-o", fifo.name], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    reader.join(10)
    if reader.is_alive():  # let it go, and fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(10)
        pytest.fail(f"the reader of the FIFO was still waiting 10 s after the run: {proc.stderr}")
    assert got == [b""]
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and said in proc.stderr, proc.stderr


def _read_during(fifo, run):
    """``run()`` as a thread reads the FIFO ``fifo`` (made here) to its end: what
    ``run`` gave, and what the reader got ([bytes], [] where it got no end)."""
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()), daemon=True)
    reader.start()
    proc = run()
    reader.join(30)
    return proc, got


def _drop_in_into_fifo(tmp_path, name: str, *args: str):
    """The drop-in run from ``tmp_path`` with ``-o`` a FIFO ``name`` there: the run and
    what its reader got."""
    return _read_during(tmp_path / name, lambda: subprocess.run([DROPIN, *args, "-o", name, *FAST],
                                                                capture_output=True, text=True, cwd=tmp_path,
                                                                timeout=300))


def test_the_drop_in_writes_into_a_fifo_named_as_a_picture_as_the_reference_does(tmp_path):
    # The reference fopens -o and writes into a named pipe; the drop-in refused it
    # ('cannot write out.png: not a regular file'), and its reader got nothing.
    Image.fromarray(picture(6, 8)).save(tmp_path / "in.png")
    proc, got = _drop_in_into_fifo(tmp_path, "out.JPG", "-i", "in.png", "-f", "png")
    assert proc.returncode == 0, proc.stderr
    with Image.open(io.BytesIO(got[0])) as im:  # its name's format, whatever -f says, as for a file
        assert im.format == "JPEG" and im.size == (16, 12)
    assert "-f png ignored: out.JPG is written as jpg" in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.png", "out.JPG"] and (tmp_path / "out.JPG").is_fifo()


def test_the_drop_in_writes_a_picture_with_alpha_asked_into_a_jpg_fifo_beside_it_as_png(tmp_path):
    # As the reference, which writes out.jpg.png as a file and leaves the pipe alone:
    # its reader sees the end, and the warning names the file written.
    Image.fromarray(picture(6, 8, channels=4)).save(tmp_path / "in.png")
    proc, got = _drop_in_into_fifo(tmp_path, "out.jpg", "-i", "in.png")
    assert proc.returncode == 0, proc.stderr
    assert got == [b""]
    assert "has alpha channel" in proc.stderr and "writing out.jpg.png" in proc.stderr, proc.stderr
    with Image.open(tmp_path / "out.jpg.png") as im:
        assert im.format == "PNG" and im.mode == "RGBA" and im.size == (16, 12)


def test_the_drop_in_refuses_a_fifo_named_as_no_picture_as_the_reference_does(tmp_path):
    Image.fromarray(picture(6, 8)).save(tmp_path / "in.png")
    proc, got = _drop_in_into_fifo(tmp_path, "out", "-i", "in.png")
    assert proc.returncode == 1 and "out has no extension" in proc.stderr and proc.stderr.count("\n") == 1
    assert got == [b""]


def _folder_run(tmp_path, drop_in: bool, fifo: str | None):
    """The pictures a, b and c of a folder upscaled into the folder out, where ``fifo``
    (of out) is a FIFO read as the run goes, else nothing: the run, what the reader
    got, and the folder's names."""
    (tmp_path / "pics").mkdir(exist_ok=True)
    for i, name in enumerate("abc"):
        Image.fromarray(picture(6, 8, seed=i)).save(tmp_path / "pics" / f"{name}.png")
    out = tmp_path / ("into" if fifo else "out")
    out.mkdir()
    cmd = [DROPIN, *FAST] if drop_in else [CMD, *FAST]

    def run():
        return subprocess.run([*cmd, "-i", "pics", "-o", out.name], capture_output=True, text=True, cwd=tmp_path,
                              timeout=120)

    proc, got = _read_during(out / fifo, run) if fifo else (run(), [])
    return proc, got, sorted(os.listdir(out))


@pytest.mark.parametrize("drop_in", [False, True])
def test_a_fifo_in_the_output_folder_gets_its_picture_as_a_file_there_would(drop_in, tmp_path):
    # The reference fopens out/b.png and writes into it, as both write a FIFO given as
    # -o; it was refused per picture ('cannot write out/b.png: not a regular file').
    proc, got, names = _folder_run(tmp_path, drop_in, "b.png")
    assert proc.returncode == 0, proc.stderr
    assert names == ["a.png", "b.png", "c.png"] and (tmp_path / "into" / "b.png").is_fifo()
    assert _folder_run(tmp_path, drop_in, None)[0].returncode == 0
    assert got == [(tmp_path / "out" / "b.png").read_bytes()]
    assert (tmp_path / "into" / "a.png").read_bytes() == (tmp_path / "out" / "a.png").read_bytes()


@pytest.mark.parametrize("drop_in", [False, True])
def test_a_fifo_in_the_output_folder_that_nothing_reads_fails_its_picture_without_waiting(drop_in, tmp_path):
    # Opened to write, a FIFO waits for a reader: the run would wait for ever.
    (tmp_path / "kept").mkdir()
    os.mkfifo(tmp_path / "kept" / "b.png")
    (tmp_path / "pics").mkdir()
    for i, name in enumerate("abc"):
        Image.fromarray(picture(6, 8, seed=i)).save(tmp_path / "pics" / f"{name}.png")
    cmd = [DROPIN, *FAST] if drop_in else [CMD, *FAST]
    proc = subprocess.run([*cmd, "-i", "pics", "-o", "kept"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=60)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    fifo = os.path.join("kept", "b.png")
    assert len(errors) == 1 and errors[0].endswith(f"cannot write {fifo}: it is a pipe (FIFO) that nothing reads"), \
        proc.stderr
    assert sorted(os.listdir(tmp_path / "kept")) == ["a.png", "b.png", "c.png"]
    assert (tmp_path / "kept" / "b.png").is_fifo()


@pytest.mark.parametrize("drop_in", [False, True])
def test_a_fifo_in_the_output_folder_of_a_picture_that_failed_is_ended_for_its_reader(drop_in, tmp_path):
    # As a FIFO given as -o is (c7fc06a): its reader (cat out/b.png > b.png) waited for
    # ever for a writer that never came.
    (tmp_path / "pics").mkdir()
    Image.fromarray(picture(6, 8)).save(tmp_path / "pics" / "a.png")
    (tmp_path / "pics" / "b.png").write_text("not a picture")
    (tmp_path / "out").mkdir()
    cmd = [DROPIN, *FAST] if drop_in else [CMD, *FAST]
    proc, got = _read_during(tmp_path / "out" / "b.png", lambda: subprocess.run(
        [*cmd, "-i", "pics", "-o", "out"], capture_output=True, text=True, cwd=tmp_path, timeout=120))
    ended = list(got)
    if not ended:
        os.close(os.open(tmp_path / "out" / "b.png", os.O_WRONLY | os.O_NONBLOCK))  # let the reader go
    assert ended == [b""] and proc.returncode == 1 and "b.png" in proc.stderr, proc.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["a.png", "b.png"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_as_a_fifo_in_the_output_folder_waits_on_its_reader_ends_the_run(sig, tmp_path):
    # A save under way is waited for on Ctrl-C, to leave no file half-written: one into
    # a FIFO whose reader stopped reading (a paused player) was waited for until the
    # reader went, for ever where it never did.
    (tmp_path / "pics").mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (160, 200, 3), dtype=np.uint8)  # 0.4 MB as a PNG, x2
    Image.fromarray(noise).save(tmp_path / "pics" / "b.png")
    (tmp_path / "out").mkdir()
    os.mkfifo(tmp_path / "out" / "b.png")
    proc = subprocess.Popen([CMD, "-i", "pics", "-o", "out", *FAST], stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    reader = os.open(tmp_path / "out" / "b.png", os.O_RDONLY)  # and reads nothing once the pipe holds some
    try:
        assert select.select([reader], [], [], 120)[0], "nothing was written into the FIFO"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        os.close(reader)
    assert proc.returncode == 128 + sig, err
    said = [line for line in err.splitlines() if "ETA" not in line]
    assert said == ["ncnn-sr: interrupted: 0 upscaled, 0 skipped, 0 failed, 1 not done; no partial files were left; "
                    "the same command with --skip-existing goes on from there"]
    assert os.listdir(tmp_path / "out") == ["b.png"] and (tmp_path / "out" / "b.png").is_fifo()


def test_a_fifo_in_a_video_folder_run_gets_its_video_as_it_is_made(tmp_path):
    # As -o fifo.mp4 gets it, and a picture folder's FIFO its picture; it was refused
    # ('cannot write out/b.mp4: not a regular file') and its reader waited for ever.
    (tmp_path / "clips").mkdir()
    for name in "abc":
        make_clip(tmp_path / "clips" / f"{name}.mp4", frames=3, width=16, height=12)
    (tmp_path / "out").mkdir()
    proc, got = _read_during(tmp_path / "out" / "b.mp4",
                             lambda: video_command("-i", tmp_path / "clips", "-o", tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    frames, size, kinds = decoded(got[0])
    assert len(frames) == 3 and size == (32, 24) and kinds == ["video", "audio"]
    assert f"wrote {tmp_path / 'out' / 'b.mp4'}: 3 frames" in proc.stderr.decode()
    assert sorted(os.listdir(tmp_path / "out")) == ["a.mp4", "b.mp4", "c.mp4"] and (tmp_path / "out" / "b.mp4").is_fifo()
    # Nothing reads it: the video fails at once, the others are written.
    for name in "ac":
        (tmp_path / "out" / f"{name}.mp4").unlink()
    proc = video_command("-i", tmp_path / "clips", "-o", tmp_path / "out")
    errors = [line for line in proc.stderr.decode().splitlines() if ": error: " in line]
    assert proc.returncode == 1 and errors == [
        f"ncnn-sr: error: cannot write {tmp_path / 'out' / 'b.mp4'}: it is a pipe (FIFO) that nothing reads"]
    assert sorted(os.listdir(tmp_path / "out")) == ["a.mp4", "b.mp4", "c.mp4"]
    # A video that fails: its reader sees the end, as a picture's does.
    (tmp_path / "clips" / "b.mp4").write_bytes(b"not a video")
    (tmp_path / "out" / "b.mp4").unlink()
    proc, got = _read_during(tmp_path / "out" / "b.mp4", lambda: video_command("-i", tmp_path / "clips", "-o",
                                                                                tmp_path / "out"))
    ended = list(got)
    if not ended:
        os.close(os.open(tmp_path / "out" / "b.mp4", os.O_WRONLY | os.O_NONBLOCK))  # let the reader go
    assert ended == [b""] and proc.returncode == 1


def test_the_drop_in_writes_a_video_into_a_fifo_as_ncnn_sr_video_does(tmp_path):
    # It refused the pipe ('cannot write out.mkv: not a regular file'), where ncnn-sr
    # video -o >(...) and the drop-in's picture into a FIFO write into it.
    clip = make_clip(tmp_path / "in.mp4", frames=3, width=16, height=12)
    proc, got = _drop_in_into_fifo(tmp_path, "out.mkv", "-i", clip.name)
    assert proc.returncode == 0, proc.stderr
    frames, size, kinds = decoded(got[0])
    assert len(frames) == 3 and size == (32, 24) and kinds == ["video", "audio"]


def _into_fifo(tmp_path, name: str, clip, *args) -> tuple[subprocess.CompletedProcess, bytes]:
    """ncnn-sr video's run of ``clip`` into a FIFO named ``name``, and what its reader got."""
    proc, got = _read_during(tmp_path / name, lambda: video_command("-i", clip, "-o", tmp_path / name, *args))
    return proc, got[0]


@pytest.mark.parametrize("name, first", [
    ("out.mp4", b"ftypiso5"), ("out.MOV", b"ftypqt  "), ("out.m4v", b"ftypM4V "),  # as fragmented MP4
    ("out.webm", b"webm"), ("out.mkv", b"matroska"), ("out.ts", b"G"), ("out.mts", b"G"),
    ("out.m2ts", b"G@\x11")])
def test_a_video_into_a_fifo_is_written_in_the_container_its_name_says(name, first, tmp_path):
    # A reader of out.mp4 got Matroska, whatever the name said, without a word.
    sound = "libopus" if name == "out.webm" else "aac"  # one it holds, not re-encoded with a warning
    proc, got = _into_fifo(tmp_path, name, make_clip(tmp_path / "in.mp4", frames=3, width=16, height=12, audio=sound))
    assert proc.returncode == 0, proc.stderr
    assert first in got[:40] and proc.stderr.decode().count("\n") == 1  # the one line that says it wrote it
    if name.endswith("ts"):  # of 188-byte packets, or 192 in an .m2ts, as a file's
        size = 192 if name == "out.m2ts" else 188
        assert len(got) % size == 0 and got[size - 188::size] == b"G" * (len(got) // size)
    frames, size, kinds = decoded(got)
    assert len(frames) == 3 and size == (32, 24) and kinds == ["video", "audio"]


def test_an_mp4_into_a_fifo_reads_back_as_the_file_would(tmp_path):
    # Fragmented: each keyframe's run of frames in a box of its own, an empty index first.
    clip = make_clip(tmp_path / "in.mp4", frames=24, b_frames=2, gop=8)
    proc, got = _into_fifo(tmp_path, "out.mp4", clip)
    assert proc.returncode == 0, proc.stderr
    assert video_command("-i", clip, "-o", tmp_path / "file.mp4").returncode == 0
    (tmp_path / "got.mp4").write_bytes(got)
    for read in (tmp_path / "got.mp4", io.BytesIO(got)):  # sought in, and as it comes
        with av.open(read) as c, av.open(tmp_path / "file.mp4") as f:
            assert c.format.name == f.format.name
            # FFmpeg's reader counts in a fragmented MP4's length the AAC priming its
            # edit list cuts (1024 samples), which the file's index leaves out.
            assert 0 <= c.duration - f.duration <= 1024 * 1_000_000 // 48000 + 1
            assert [(p.pts, p.duration, bytes(p)) for p in c.demux(audio=0)] == \
                [(p.pts, p.duration, bytes(p)) for p in f.demux(audio=0)]
    frames = decoded(got)[0]
    assert frames == decoded((tmp_path / "file.mp4").read_bytes())[0] and len(frames) == 24


def test_a_tiny_mpeg_ts_into_a_fifo_is_read_back_as_one(tmp_path):
    # As a file is: 9 packets of 188 bytes were read as an MPEG program stream, which
    # found no frame ("not a video FFmpeg can read (End of file)").
    proc, got = _into_fifo(tmp_path, "out.ts", make_clip(tmp_path / "in.mp4", frames=2, width=16, height=16,
                                                          audio=None))
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "got.ts").write_bytes(got)
    with av.open(tmp_path / "got.ts") as c:
        assert c.format.name == "mpegts" and len(list(c.decode(video=0))) == 2


@pytest.mark.parametrize("name", ["out.mp4", "out.mov"])
def test_cover_art_into_an_mp4_fifo_is_dropped_with_a_warning(name, tmp_path):
    # A fragmented MP4 gives each stream a track: the cover's, without a frame, was
    # read back as a video of no codec beside the cover; a .mov's cover, put in once
    # a file is written, was dropped without a word.
    clip = with_cover_art(make_clip(tmp_path / "plain.mp4", frames=3, width=16, height=16), tmp_path / "in.mp4")
    proc, got = _into_fifo(tmp_path, name, clip)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.decode().splitlines()[:-1] == [
        f"ncnn-sr: warning: {name[-4:]} written into a pipe cannot hold cover art: dropping stream 2, a picture "
        "attached to the file (a .mkv output keeps it)"]
    with av.open(io.BytesIO(got)) as c:
        assert [(s.type, s.codec_context.name) for s in c.streams] == [("video", "h264"), ("audio", "aac")]


def test_a_phones_quicktime_keys_into_an_mp4_fifo_are_dropped_with_a_warning(tmp_path):
    # They are put into a file once it is written, which a pipe is not.
    plain = make_clip(tmp_path / "plain.mov", frames=3, width=16, height=16)
    clip = remux_with(plain, tmp_path / "phone.mov", tags=PHONE_KEYS, options={"movflags": "use_metadata_tags"})
    proc, got = _into_fifo(tmp_path, "out.mp4", clip)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.decode().splitlines()[:-1] == [
        f"ncnn-sr: warning: .mp4 written into a pipe cannot hold QuickTime keys: dropping {', '.join(PHONE_KEYS)} "
        "(a .mkv output keeps them)"]
    with av.open(io.BytesIO(got)) as c:
        assert len(list(c.decode(video=0))) == 3


def test_a_video_into_a_fifo_named_as_a_container_that_goes_back_is_matroska_with_a_warning(tmp_path):
    # An AVI's header holds its length, filled in once the video ends: a 1 s AVI written
    # into a pipe read back as 137 s long.
    proc, got = _into_fifo(tmp_path, "out.avi", make_clip(tmp_path / "in.mp4", frames=3, width=16, height=12))
    assert proc.returncode == 0, proc.stderr
    assert got.startswith(b"\x1a\x45\xdf\xa3") and len(decoded(got)[0]) == 3
    said = proc.stderr.decode().splitlines()
    assert len(said) == 2 and said[0] == (
        f"ncnn-sr: warning: {tmp_path / 'out.avi'} is a pipe, which .avi cannot be written into: writing Matroska "
        "(.mkv) into it")


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


@pytest.mark.skipif(os.name == "nt", reason="no file size limit (RLIMIT_FSIZE)")
@pytest.mark.parametrize("channels, asked, said", [
    (3, "png", "the picture for standard output"),
    (4, "jpg", r"the picture for standard output \(as png\)"),  # a jpg's transparency kept: written as png
])
def test_a_picture_for_standard_output_that_its_temporary_folder_cannot_take_names_that_folder(channels, asked, said,
                                                                                             tmp_path):
    # Past a file size limit (ulimit -f), or in a full TMPDIR, the picture's stand-in file
    # failed as "cannot write standard output: File too large", though standard output
    # was never written: the pipe or the disk under it blamed.
    import resource

    Image.fromarray(picture(16, 16, channels, seed=2)).save(tmp_path / "in.png")
    limit = (tmp_path / "in.png").stat().st_size + 100  # below the upscaled picture's size
    proc = command(tmp_path, "-i", tmp_path / "in.png", "-o", "-", "-f", asked,
                   preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    folder = re.escape(str(tmp_path / "tmp" / "ncnn-sr-stream-"))
    *before, error = proc.stderr.decode().splitlines()
    assert proc.returncode == 1 and re.fullmatch(rf"ncnn-sr: error: cannot write {said} in {folder}\w+: File too large "
                                                 r"\(past this process's limit on a file's size: ulimit -f\)", error), \
        proc.stderr
    assert all(line.startswith("ncnn-sr: warning: ") for line in before), proc.stderr  # the jpg's transparency
    assert proc.stdout == b"" and os.listdir(tmp_path / "tmp") == []


@pytest.mark.skipif(os.name == "nt", reason="no non-blocking pipes")
@pytest.mark.parametrize("video", [False, True])
def test_standard_output_left_non_blocking_gets_the_whole_output(video, tmp_path):
    # A pipe its writer's parent left non-blocking (node.js's child processes get one),
    # read more slowly than written: the picture reached it cut at what the pipe held,
    # status 0; the video ended in a traceback (TypeError: unsupported operand type(s)
    # for +=: 'int' and 'NoneType'), a write that would wait having returned None.
    # Each output past the pipe's 64 kB: ffv1 keeps every level of the frames.
    if video:
        args = ["video", "-i", make_clip(tmp_path / "in.mp4", frames=24, width=64, height=48, audio=None),
                "--codec", "ffv1"]
    else:
        Image.fromarray(picture(120, 130, seed=5)).save(tmp_path / "in.png")
        args = ["-i", tmp_path / "in.png"]
    read, write = os.pipe()
    os.set_blocking(write, False)
    proc = subprocess.Popen([CMD, *map(str, args), "-o", "-", *FAST], stdout=write, stderr=subprocess.PIPE)
    os.close(write)
    # Read once the pipe is full (what it holds no longer grows), or the command has ended.
    deadline, held = time.monotonic() + 120, -1
    while proc.poll() is None and (held < 1 or _unread(read) != held):
        assert time.monotonic() < deadline
        held = _unread(read)
        time.sleep(0.5)
    with open(read, "rb") as reader:
        got = reader.read()
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    proc.stderr.close()
    if video:
        assert len(decoded(got)[0]) == 24, len(got)
    else:
        with Image.open(io.BytesIO(got)) as im:
            im.load()  # all of it there, not the header alone
            assert im.size == (260, 240)


@pytest.mark.skipif(os.name == "nt", reason="no non-blocking pipes")
def test_a_non_blocking_standard_output_the_parent_shares_is_left_as_it_was(tmp_path):
    # Made to wait for the picture's writing, standard output stayed so: a parent that
    # shares it (its own, inherited) found its pipe end changed under it.
    Image.fromarray(picture(8, 10, seed=5)).save(tmp_path / "in.png")
    read, write = os.pipe()
    os.set_blocking(write, False)
    proc = subprocess.run([CMD, "-i", tmp_path / "in.png", "-o", "-", *FAST], stdout=write, stderr=subprocess.PIPE,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert not os.get_blocking(write)
    os.close(write)
    with open(read, "rb") as reader, Image.open(io.BytesIO(reader.read())) as im:
        assert im.size == (20, 16)


@pytest.mark.skipif(os.name == "nt", reason="no non-blocking pipes")
@pytest.mark.parametrize("leave", ["interrupted", "out of memory", "work abandoned"])
def test_a_standard_input_made_to_wait_is_put_back_by_the_exits_that_skip_atexit(leave, monkeypatch):
    # A Ctrl-C, or memory run out, ends the command by os._exit, past the atexit that
    # puts the flag back: the parent that shares the pipe end found it made to wait.
    from ncnn_sr import batch_cli, entry, streams

    class Left(Exception):
        pass

    def exit_now(status):
        raise Left(status)

    registered = []
    monkeypatch.setattr(streams, "_made_waiting", [])
    monkeypatch.setattr(streams.atexit, "register", registered.append)  # not this test's own exit
    monkeypatch.setattr(os, "_exit", exit_now)
    monkeypatch.setattr(batch_cli, "_close_command", lambda: None)  # no command of click's here
    read, write = os.pipe()
    before = os.dup(0)
    try:
        os.set_blocking(read, False)
        os.dup2(read, 0)
        with open(0, "rb", closefd=False) as standard:
            streams._waiting(standard)
        assert os.get_blocking(read) and registered
        with pytest.raises(Left):
            {"interrupted": lambda: entry._interrupted("ncnn-sr"),
             "out of memory": lambda: entry._out_of_memory("ncnn-sr"),
             "work abandoned": lambda: batch_cli.stop_interrupted(None, "ncnn-sr: interrupted")}[leave]()
        assert not os.get_blocking(read)
    finally:
        os.dup2(before, 0)
        for fd in (before, read, write):
            os.close(fd)


@pytest.mark.skipif(os.name == "nt", reason="no non-blocking pipes")
@pytest.mark.parametrize("video", [False, True])
def test_standard_input_left_non_blocking_is_waited_for(video, tmp_path):
    # A pipe left non-blocking, its bytes coming a moment after the command read it: the
    # picture was "standard input is empty: no picture came", its bytes unread.
    data = make_clip(tmp_path / "in.mkv", frames=3, audio=None).read_bytes() if video else png_bytes(10, 12)
    out = tmp_path / ("out.mkv" if video else "out.png")
    read, write = os.pipe()
    os.set_blocking(read, False)
    proc = subprocess.Popen([CMD, *(["video"] if video else []), "-i", "-", "-o", str(out), *FAST], stdin=read,
                            stderr=subprocess.PIPE)
    os.close(read)
    time.sleep(1.5)  # the command's first read meanwhile, into the empty pipe
    try:
        with open(write, "wb") as writer:
            writer.write(data)
    except BrokenPipeError:  # the command gave up reading: its status and words say why
        pass
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    proc.stderr.close()
    if video:
        assert len(decoded(out.read_bytes())[0]) == 3
    else:
        with Image.open(out) as im:
            assert im.size == (24, 20)


def _unread(fd: int) -> int:
    """Bytes in the pipe ``fd`` reads, not yet read."""
    import array
    import fcntl
    import termios

    count = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, count)
    return count[0]


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


def test_the_drop_ins_stream_hints_name_only_what_it_takes(tmp_path):
    # The drop-in reads "-" as a file's name and writes no stream, as the reference:
    # its hints offered -i - and -o -, which it then refused ("-: file not found").
    (tmp_path / "pics").mkdir()
    drop_in = [DROPIN, "-i", "/dev/stdin", *FAST]
    proc = subprocess.run([*drop_in, "-o", tmp_path / "pics"], input=png_bytes(6, 6), capture_output=True, timeout=300)
    assert proc.returncode == 1 and proc.stderr.decode().splitlines() == [
        "realesrgan-ncnn-vulkan: error: /dev/stdin failed: a picture from standard input needs an output file's name, "
        "not a folder"]
    main, other = pty.openpty()
    try:
        for output, what, example in (("o.png", "picture", "in.jpg"), ("o.mkv", "video", "in.mkv")):
            proc = subprocess.run([*drop_in, "-o", tmp_path / output], stdin=other, capture_output=True, timeout=300)
            assert proc.returncode == 1 and proc.stderr.decode().splitlines() == [
                f"realesrgan-ncnn-vulkan: error: /dev/stdin failed: standard input is a terminal: pipe a {what} in "
                f"(-i /dev/stdin < {example})"]
    finally:
        os.close(main)
        os.close(other)
    assert os.listdir(tmp_path / "pics") == []


def test_the_librarys_video_streams_refuse_a_terminal_in_the_librarys_words(monkeypatch):
    # found by a user audit: upscale_video's VideoInput and VideoOutput (documented there)
    # told a script "-i - < in.mkv" and "-o - | ...", flags of a command it never ran.
    from ncnn_sr.errors import InputError
    from ncnn_sr.streams import VideoInput, VideoOutput

    main, other = pty.openpty()
    try:
        terminal = os.ttyname(other)
        with pytest.raises(InputError) as read:
            VideoInput(terminal)
        with pytest.raises(InputError) as written:
            VideoOutput(terminal)
        monkeypatch.setattr(sys, "stdin", open(other, closefd=False))
        with pytest.raises(InputError) as standard:
            VideoInput("-")
    finally:
        os.close(main)
        os.close(other)
    assert str(read.value) == f"{terminal} is a terminal: pipe a video in, or give upscale_video the video's path"
    assert str(written.value) == f"{terminal} is a terminal: send the video to a file or a pipe, or give " \
                                 "upscale_video a file's path to write"
    assert str(standard.value) == "standard input is a terminal: pipe a video in, or give upscale_video the " \
                                  "video's path"


def test_the_drop_in_writing_into_a_terminal_is_not_offered_dash(tmp_path):
    # A terminal named as its output (a link out.png to the pty) was told "-o - > out.png"
    # and "-o - | ...", which the drop-in refuses: it writes files, not standard output.
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    main, other = pty.openpty()
    try:
        for name, what in (("out.png", "picture"), ("out.mkv", "video")):
            (tmp_path / name).symlink_to(os.ttyname(other))
            source = tmp_path / ("in.png" if what == "picture" else "in.mkv")
            if what == "video":
                make_clip(source, frames=2, audio=None)
            proc = subprocess.run([DROPIN, "-i", source, "-o", tmp_path / name, *FAST], capture_output=True,
                                  timeout=300)
            assert proc.returncode == 1 and proc.stderr.decode().splitlines() == [
                f"realesrgan-ncnn-vulkan: error: {source} failed: {tmp_path / name} is a terminal: send the {what} to "
                "a file or a pipe"], proc.stderr
    finally:
        os.close(main)
        os.close(other)


def video_command(*args, stdin=b"", stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run([CMD, "video", *map(str, args), *FAST], input=stdin, stdout=stdout, stderr=subprocess.PIPE,
                          timeout=300)


def decoded(data: bytes):
    """(time, mean grey level) of each video frame of a video's bytes, its frame size
    and its streams' kinds."""
    with av.open(io.BytesIO(data)) as c:
        kinds = [s.type for s in c.streams]
        frames = [(round(float(f.pts * f.time_base), 3), f.to_ndarray(format="rgb24").mean(), (f.width, f.height))
                  for f in c.decode(video=0)]
    return [f[:2] for f in frames], frames[0][2], kinds


def test_a_video_through_pipes_keeps_its_frames_times_and_sound(tmp_path):
    # As ffmpeg ... -f matroska - | ncnn-sr video -i - -o - | ffmpeg -i - ...: read as it
    # comes, written as it is made, in Matroska.
    clip = make_clip(tmp_path / "in.mkv", frames=10, colours=[(20 * i, 20 * i, 20 * i) for i in range(10)])
    proc = video_command("-i", "-", "-o", "-", stdin=clip.read_bytes())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(b"\x1a\x45\xdf\xa3")  # Matroska's first bytes: nothing else came before
    assert proc.stderr.decode().splitlines()[-1].startswith("ncnn-sr: wrote standard output: 10 frames")
    frames, size, kinds = decoded(proc.stdout)
    assert size == (64, 48) and kinds == ["video", "audio"]
    assert video_command("-i", clip, "-o", tmp_path / "out.mkv").returncode == 0
    assert frames == decoded((tmp_path / "out.mkv").read_bytes())[0]  # what files give
    assert [t for t, _ in frames] == [t for t, _ in decoded(clip.read_bytes())[0]]


def test_an_mpeg_ts_with_aac_sound_through_pipes_keeps_its_sound(tmp_path):
    # An MPEG-TS carries AAC with a header on each packet and none for the stream, which
    # Matroska needs at its start when it cannot go back to it: "standard output:
    # cannot encode: Invalid argument".
    clip = make_clip(tmp_path / "in.ts", frames=4)
    proc = video_command("-i", "-", "-o", "-", stdin=clip.read_bytes())
    assert proc.returncode == 0, proc.stderr
    with av.open(io.BytesIO(proc.stdout)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
        sound = list(c.decode(audio=0))
    with av.open(str(clip)) as c:
        given = list(c.decode(audio=0))
    assert sum(f.samples for f in sound) == sum(f.samples for f in given) > 0
    assert sound[0].sample_rate == 48000 and sound[0].layout.name == "mono"


def test_a_matroska_with_a_picture_attached_keeps_it_through_pipes(tmp_path):
    # Its cover picture was read by opening the input again by name: "<none>: No such
    # file or directory".
    cover = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(cover, "JPEG")
    font = bytes(range(256)) * 4
    with av.open(str(make_clip(tmp_path / "plain.mkv", frames=3))) as inp, \
            av.open(str(tmp_path / "in.mkv"), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        out.add_attachment("cover.jpg", "image/jpeg", cover.getvalue())
        out.add_attachment("font.ttf", "font/ttf", font)
        for packet in inp.demux():
            if packet.size:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    proc = video_command("-i", "-", "-o", "-", stdin=(tmp_path / "in.mkv").read_bytes())
    assert proc.returncode == 0, proc.stderr
    with av.open(io.BytesIO(proc.stdout)) as c:
        [picture] = [s for s in c.streams.video if s.disposition & av.stream.Disposition.attached_pic]
        assert picture.metadata["filename"] == "cover.jpg" and bytes(next(c.demux(picture))) == cover.getvalue()
        assert [(s.name, bytes(s.data)) for s in c.streams.attachments] == [("font.ttf", font)]
    with av.open(io.BytesIO(proc.stdout)) as c:
        assert len(list(c.decode(video=0))) == 3 and [s.type for s in c.streams][:2] == ["video", "audio"]


def test_a_part_of_a_video_from_standard_input_to_a_file(tmp_path):
    clip = make_clip(tmp_path / "in.mkv", frames=12, colours=[(20 * i, 20 * i, 20 * i) for i in range(12)])
    proc = video_command("-i", "-", "-o", tmp_path / "out.mp4", "--start", "0.25", stdin=clip.read_bytes())
    assert proc.returncode == 0, proc.stderr
    frames, _, _ = decoded((tmp_path / "out.mp4").read_bytes())
    assert [round(g / 20) for _, g in frames] == list(range(6, 12))


def test_a_video_from_standard_input_to_a_video_name_routes_to_video(tmp_path):
    # "ncnn-sr -i - -o out.mkv" went to picture mode: "unsupported output format '.mkv'".
    clip = make_clip(tmp_path / "in.mkv", frames=3)
    proc = subprocess.run([CMD, "-i", "-", "-o", tmp_path / "out.mkv", *FAST], input=clip.read_bytes(),
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(decoded((tmp_path / "out.mkv").read_bytes())[0]) == 3


@pytest.mark.parametrize("name, kind", [("in.mkv", "Matroska"), ("in.mp4", "MP4"), ("in.ts", "MPEG-TS"),
                                        ("in.avi", "AVI")])
def test_a_video_on_standard_input_in_picture_mode_says_to_use_the_video_command(name, kind, tmp_path):
    # "ncnn-sr -i - -o -" cannot tell a video by a name: it said "standard input: not a
    # picture, or a format Pillow cannot read".
    clip = make_clip(tmp_path / name, frames=2, audio=None)
    proc = command(tmp_path, "-i", "-", "-o", "-", stdin=clip.read_bytes())
    assert proc.returncode == 1 and proc.stdout == b""
    assert proc.stderr.decode().splitlines() == [
        f"ncnn-sr: error: standard input is a video ({kind}), not a picture: upscale it with 'ncnn-sr video'"]


def test_a_y4m_video_given_as_a_picture_says_to_use_the_video_command(tmp_path):
    # found by a run of the README's commands: the README names .y4m among the videos
    # ncnn-sr -i takes by their output's name; with a picture's output it was "not a
    # picture, or a format Pillow cannot read", piped in or not
    clip = tmp_path / "tape.y4m"
    with av.open(str(clip), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        for i in range(2):
            frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 50 * i, np.uint8), format="rgb24")
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode())
    piped = command(tmp_path, "-i", "-", "-o", "-", stdin=clip.read_bytes())
    named = command(tmp_path, "-i", clip, "-o", tmp_path / "out.png")
    for proc, name in ((piped, "standard input"), (named, clip)):
        assert proc.returncode == 1 and proc.stderr.decode().splitlines()[-1] == \
            f"ncnn-sr: error: {name} is a video (YUV4MPEG2), not a picture: upscale it with 'ncnn-sr video'"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tape.y4m", "tmp"]
    # read_image's caller is named the library's function, where it was told of the command.
    from ncnn_sr import InputError, read_image

    with pytest.raises(InputError) as caught:
        read_image(clip)
    assert str(caught.value) == f"{clip} is a video (YUV4MPEG2), not a picture: upscale it with upscale_video"


def test_sound_in_an_mp4_on_standard_input_in_picture_mode_is_not_called_a_video(tmp_path):
    # An .m4a was "a video (MP4) ...: upscale it with 'ncnn-sr video'", which then said
    # it has no video stream.
    sound = tmp_path / "in.m4a"
    with av.open(str(sound), "w") as out:
        stream = out.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    assert sound.read_bytes()[8:12] == b"M4A "
    proc = command(tmp_path, "-i", "-", "-o", "-", stdin=sound.read_bytes())
    assert proc.returncode == 1 and proc.stderr.decode().splitlines() == [
        "ncnn-sr: error: standard input: not a picture, or a format Pillow cannot read"]


@pytest.mark.parametrize("name, codec", [("in.mka", "flac"), ("in.webm", "libopus")])
def test_sound_in_matroska_on_standard_input_in_picture_mode_is_not_called_a_video(tmp_path, name, codec):
    # found by a bug hunt: an .mka was "a video (Matroska) ...: upscale it with
    # 'ncnn-sr video'", which then said it has no video stream
    sound = tmp_path / name
    with av.open(str(sound), "w") as out:
        stream = out.add_stream(codec, rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        for packet in (*stream.encode(frame), *stream.encode()):
            out.mux(packet)
    assert sound.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"
    proc = command(tmp_path, "-i", "-", "-o", "-", stdin=sound.read_bytes())
    assert proc.returncode == 1 and proc.stderr.decode().splitlines() == [
        "ncnn-sr: error: standard input: not a picture, or a format Pillow cannot read"]


def test_a_video_to_standard_output_in_a_file_the_shell_made(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    with open(tmp_path / "out.mkv", "wb") as f:
        proc = video_command("-i", clip, "-o", "/dev/stdout", stdout=f)
    assert proc.returncode == 0, proc.stderr
    assert len(decoded((tmp_path / "out.mkv").read_bytes())[0]) == 3


@pytest.mark.parametrize("append", [False, True])
def test_a_video_to_standard_output_in_a_file_after_what_it_holds(append, tmp_path):
    # { echo ...; ncnn-sr video -o -; } > f: the Matroska's sizes, written last, went where
    # they would be at the file's start, over its Segment's id; >> f: at the file's end.
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    piped = video_command("-i", clip, "-o", "-").stdout  # written one way, as >> can only be
    out = tmp_path / "out.mkv"
    out.write_bytes(b"head\n")
    with open(out, "ab" if append else "r+b") as f:
        f.seek(5)
        proc = video_command("-i", clip, "-o", "-", stdout=f)
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert data[:5] == b"head\n" and data[5:9] == b"\x1a\x45\xdf\xa3"
    assert b"\x18\x53\x80\x67" in data[5:80]  # the Segment
    assert len(decoded(data[5:])[0]) == 3
    if append:
        assert len(data) - 5 == len(piped)  # nothing written past the video


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_full_disk_on_standard_output_is_one_line(tmp_path):
    # The video's said "None: No space left on device".
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    for args in (["video", "-i", clip], ["-i", tmp_path / "in.png"]):
        with open("/dev/full", "wb") as full:
            proc = subprocess.run([CMD, *map(str, args), "-o", "-", *FAST], stdout=full, stderr=subprocess.PIPE,
                                  timeout=300)
        assert proc.returncode == 1 and proc.stderr.decode().splitlines() == [
            "ncnn-sr: error: cannot write standard output: No space left on device"]


def _mkv_header_cut(tmp_path):
    return make_clip(tmp_path / "whole.mkv", frames=3).read_bytes()[:300]


@pytest.mark.parametrize("given, said", [
    (b"", "standard input is empty: no video came"),  # as for a picture, not "Invalid data found"
    (b"no video at all", "standard input: not a video FFmpeg can read"),
    # Matroska cut inside its header: it said "<none>: Input/output error".
    (_mkv_header_cut, "standard input: not a video FFmpeg can read (it ends too soon, as a copy or download cut "
                      "short does)"),
])
def test_what_is_no_video_on_standard_input_is_one_line(given, said, tmp_path):
    proc = video_command("-i", "-", "-o", "-", stdin=given(tmp_path) if callable(given) else given)
    assert proc.returncode == 1 and proc.stdout == b""
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ncnn-sr: error: {said}"), proc.stderr


def test_an_animated_png_on_standard_input_says_to_give_it_as_a_file(tmp_path):
    # FFmpeg reads an APNG as a video only from a file: it said "not a video FFmpeg can
    # read (Function not implemented)", though the same file as -i is upscaled.
    frames = [Image.fromarray(picture(8, 8, seed=i)) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:], duration=100)
    proc = video_command("-i", "-", "-o", "-", stdin=out.getvalue())
    if av.library_versions["libavformat"] >= (63,):  # FFmpeg 9 (PyAV 19) reads it from a pipe too
        assert proc.returncode == 0, proc.stderr
        (tmp_path / "in.png").write_bytes(out.getvalue())
        frames, size, _ = decoded(proc.stdout)
        assert len(frames) == 3 and size == (16, 16)
        assert decoded(proc.stdout) == decoded(video_command("-i", tmp_path / "in.png", "-o", "-").stdout)
        return
    assert proc.returncode == 1 and proc.stdout == b""
    assert proc.stderr.decode().splitlines() == [
        "ncnn-sr: error: standard input: FFmpeg reads this kind of video only by going back in it: give it as a file"]


@pytest.mark.parametrize("suffix, kind", [(".mp4", "an mp4"), (".mov", "a mov (QuickTime)")])
def test_an_mp4_with_its_index_last_on_standard_input_is_one_line(suffix, kind, tmp_path):
    # FFmpeg reads through its frames to the index, then cannot go back to them: the
    # error was "cannot decode: Invalid data ... (a damaged file?)". A mov was called an mp4.
    clip = make_clip(tmp_path / f"in{suffix}", frames=3)
    proc = video_command("-i", "-", "-o", "-", stdin=clip.read_bytes())
    assert proc.returncode == 1 and proc.stdout == b""
    assert proc.stderr.decode().splitlines() == [
        f"ncnn-sr: error: standard input: {kind} whose index (moov) follows its frames cannot be read as it comes: "
        "give it as a file, or remux it with its index first (ffmpeg -movflags faststart)"]


@pytest.mark.parametrize("drop_in, given", [(False, "-"), (False, "/dev/stdin"), (True, "/dev/stdin")])
def test_standard_input_redirected_from_a_file_is_read_as_that_file(drop_in, given, tmp_path):
    # "< in.mp4" makes standard input the file itself, which can be gone back in: an mp4
    # with its index last was refused as from a pipe ("give it as a file"), and the
    # drop-in took it for a picture ("unsupported output format '.mp4'").
    clip = make_clip(tmp_path / "in.mp4", frames=4, colours=[(40 * i, 40 * i, 40 * i) for i in range(4)])
    data = clip.read_bytes()
    assert data.find(b"mdat") < data.find(b"moov")  # PyAV's mp4 muxer puts the index last
    command = [DROPIN, "-i", given, "-o", tmp_path / "out.mp4", *FAST] if drop_in \
        else [CMD, "video", "-i", given, "-o", tmp_path / "out.mp4", *FAST]
    with open(clip, "rb") as stdin:
        proc = subprocess.run(command, stdin=stdin, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    frames, size, kinds = decoded((tmp_path / "out.mp4").read_bytes())
    assert size == (64, 48) and kinds == ["video", "audio"]
    assert [round(g / 40) for _, g in frames] == [0, 1, 2, 3]


def test_a_part_of_a_video_redirected_from_a_file_that_gives_no_start_time_counts_from_its_first_frame(tmp_path):
    # FFmpeg gives no start time for a Matroska of three frames with B-frames, here from
    # 10 s on: standard input's part was taken from 0 on its timeline, which all three
    # frames are past, and the output kept them all, at 9.95 s and after.
    clip = make_clip(tmp_path / "late.mkv", frames=3, frame_ms=[10000, 10040, 10080], audio=None)
    with open(clip, "rb") as stdin:
        proc = subprocess.run([CMD, "video", "-i", "-", "-o", tmp_path / "out.mkv", "--start", "0.05", *FAST],
                              stdin=stdin, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    frames, _, _ = decoded((tmp_path / "out.mkv").read_bytes())
    assert [t for t, _ in frames] == [0.03]  # the frame at 10.08 s, as from the file by name
    with open(clip, "rb") as stdin:
        proc = subprocess.run([CMD, "video", "-i", "-", "-o", tmp_path / "past.mkv", "--start", "1", *FAST],
                              stdin=stdin, capture_output=True, timeout=300)
    assert proc.returncode == 1 and proc.stderr.decode().splitlines() == [
        "ncnn-sr: error: standard input: starting at 1 s (--start) is past its end, at 0.122 s"]


def test_a_part_of_a_piped_video_that_gives_no_start_time_is_refused(tmp_path):
    # A pipe cannot be read twice to find its first frame's time: the part was taken
    # from 0 on a timeline that starts at 10 s, and all three frames went out at 9.95 s on.
    clip = make_clip(tmp_path / "late.mkv", frames=3, frame_ms=[10000, 10040, 10080], audio=None)
    proc = video_command("-i", "-", "-o", tmp_path / "out.mkv", "--start", "0.05", stdin=clip.read_bytes())
    assert proc.returncode == 1 and proc.stderr.decode().splitlines() == [
        "ncnn-sr: error: standard input does not say where its video starts, which a part (--start, --duration) "
        "counts from, and a pipe cannot be read twice to find it: redirect a file to it (-i - < in.mkv)"]
    assert not (tmp_path / "out.mkv").exists()
    # A bare H.264 stream has no times of its own: its frames count from 0.
    bare = tmp_path / "in.h264"
    with av.open(str(clip)) as inp, av.open(str(bare), "w", format="h264") as out:
        video = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(video=0):
            if packet.size:
                packet.stream = video
                out.mux(packet)
    proc = video_command("-i", "-", "-o", tmp_path / "bare.mkv", "--start", "0.05", stdin=bare.read_bytes())
    assert proc.returncode == 0, proc.stderr
    assert len(decoded((tmp_path / "bare.mkv").read_bytes())[0]) == 1


def test_an_empty_file_redirected_to_standard_input_is_one_line(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    with open(tmp_path / "empty", "rb") as stdin:
        proc = subprocess.run([CMD, "video", "-i", "-", "-o", tmp_path / "out.mkv", *FAST], stdin=stdin,
                              capture_output=True, timeout=300)
    assert proc.returncode == 1 and proc.stderr.decode().splitlines() == [
        "ncnn-sr: error: standard input is empty: no video came"]
    assert not (tmp_path / "out.mkv").exists()


def test_an_mp4_with_its_index_last_is_refused_before_its_frames_are_read_through(tmp_path):
    # FFmpeg read through all its frames (gigabytes, from a download maybe) to reach the
    # index, before the refusal: its first boxes tell.
    clip = make_clip(tmp_path / "in.mp4", frames=3).read_bytes()
    proc = subprocess.Popen([CMD, "video", "-i", "-", "-o", "-", *FAST], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(clip[:len(clip) // 2])  # the rest still to come: the pipe stays open
        proc.stdin.flush()
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.stdin.close()
    err = proc.stderr.read()
    assert proc.returncode == 1 and b"an mp4 whose index (moov) follows its frames" in err, err


def test_a_codec_matroska_cannot_hold_is_refused_for_standard_output_in_its_terms(tmp_path):
    # It said ".mkv cannot hold wmv2 video: write .avi, or ...": no .mkv was named, and
    # standard output cannot be an .avi.
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    proc = video_command("-i", clip, "-o", "-", "--codec", "wmv2")
    assert proc.returncode == 1 and proc.stdout == b""
    assert proc.stderr.decode().splitlines() == [
        "ncnn-sr: error: standard output is Matroska, which cannot hold wmv2 video: choose another --codec"]


def test_a_video_to_a_closed_pipe_is_one_line(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=6)
    proc = subprocess.Popen([CMD, "video", "-i", clip, "-o", "-", *FAST], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # a reader that went away
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1 and err.decode().strip() == (
        "ncnn-sr: error: standard output was closed before the video was written whole")


def test_a_terminal_and_folders_are_refused_for_video_streams(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    main, other = pty.openpty()
    try:
        proc = subprocess.run([CMD, "video", "-i", clip, "-o", "-", *FAST], stdout=other, stderr=subprocess.PIPE,
                              timeout=300)
        assert proc.returncode == 1 and proc.stderr.decode().strip() == (
            "ncnn-sr: error: standard output is a terminal: send the video to a file or a pipe (-o - | ...)")
        proc = subprocess.run([CMD, "video", "-i", "-", "-o", tmp_path / "o.mkv", *FAST], stdin=other,
                              capture_output=True, timeout=300)
        assert proc.returncode == 1 and proc.stderr.decode().strip() == (
            "ncnn-sr: error: standard input is a terminal: pipe a video in (-i - < in.mkv)")
    finally:
        os.close(main)
        os.close(other)
    proc = video_command("-i", tmp_path, "-o", "-")
    assert proc.returncode == 1 and proc.stderr.decode().strip().endswith(
        "the videos of a folder cannot all go to standard output: give a folder")
    proc = video_command("-i", "-", "-o", f"{tmp_path}/new/", stdin=clip.read_bytes())
    assert proc.returncode == 1 and proc.stderr.decode().strip().endswith(
        "a video from standard input needs an output file's name (or -o -), not a folder")


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


def test_an_open_descriptor_named_by_its_path_is_an_output_stream_even_redirected_to_a_file(tmp_path):
    # `-o /dev/fd/3 3>out.webp`: the name has no extension and cannot be renamed over;
    # it was refused as "no extension and not a folder", -f or not.
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    for args, fmt in ((["-f", "webp"], "WEBP"), ([], "PNG")):
        out = tmp_path / f"out.{fmt.lower()}"
        proc = subprocess.run(["sh", "-c", 'exec "$0" "$@" 3>"$OUT"', CMD, "-i", tmp_path / "in.png", "-o",
                               "/dev/fd/3", *args, *FAST], capture_output=True, env={**os.environ, "OUT": str(out)},
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        with Image.open(out) as im:
            assert im.format == fmt and im.size == (14, 12)
    # Written through the descriptor, where the shell left it: `3>>` keeps what the file held.
    (tmp_path / "log").write_bytes(b"before\n")
    proc = subprocess.run(["sh", "-c", 'exec "$0" "$@" 3>>"$OUT"', CMD, "-i", tmp_path / "in.png", "-o", "/dev/fd/3",
                           *FAST], capture_output=True, env={**os.environ, "OUT": str(tmp_path / "log")}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "log").read_bytes().startswith(b"before\n\x89PNG")
    proc = subprocess.run([CMD, "-i", tmp_path / "in.png", "-o", "/dev/fd/9", *FAST], capture_output=True, timeout=300)
    assert proc.returncode == 1 and proc.stderr.decode().strip() == "ncnn-sr: error: cannot write /dev/fd/9: Bad file descriptor"


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
    monkeypatch.setattr(tempfile, "tempdir", None)
    with pytest.raises(InputError, match="standard input holds more than"):
        streams.Streams("-", tmp_path / "o.png", None)
    assert os.listdir(tmp_path) == []


def test_a_ctrl_c_as_standard_input_s_folder_is_made_leaves_no_folder(tmp_path, monkeypatch):
    # found by a race audit: landing in mkdtemp once it had made the folder, or before
    # the try that removes it, it left an empty ncnn-sr-stream-*.
    from ncnn_sr import streams

    stdin = type("Stdin", (), {"buffer": io.BytesIO(png_bytes(4, 4)), "isatty": lambda self: False})()
    monkeypatch.setattr(streams.sys, "stdin", stdin)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ctrl_c_once_made(monkeypatch, "ncnn-sr-stream-")
    with pytest.raises(KeyboardInterrupt):
        streams.Streams("-", tmp_path / "o.png", None)
    assert os.listdir(tmp_path) == []


def test_a_video_stream_is_read_once_however_much_comes_before_its_frames(tmp_path, monkeypatch):
    # The command looked at the stream, then read it again from its start, from what it
    # had kept of it (64 MB): a Matroska with more fonts attached than that failed,
    # "standard input cannot be read again from its start". (Kept here: 2 KB.)
    from ncnn_sr import streams, video

    monkeypatch.setattr(streams, "VIDEO_LOOK", 2048, raising=False)
    clip = make_clip(tmp_path / "in.mkv", frames=3)
    assert clip.stat().st_size > 2048
    stdin = type("Stdin", (), {"buffer": io.BytesIO(clip.read_bytes()), "isatty": lambda self: False})()
    monkeypatch.setattr(streams.sys, "stdin", stdin)
    src = streams.VideoInput("-")
    assert video.probe(src).width == 32
    assert video.upscale_video(src, tmp_path / "out.mkv", lambda frames: frames) == 3


def test_video_streams_close_the_pipes_they_opened(tmp_path):
    """A >(...) output's reader sees the video end when the run does, not when the
    process exits."""
    from ncnn_sr.streams import VideoInput, VideoOutput
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    out = VideoOutput(fifo)
    out.file.write(b"video")
    out.close()
    reader.join(10)
    assert got == [b"video"] and out.file.closed
    source = tmp_path / "in.fifo"
    os.mkfifo(source)
    writer = threading.Thread(target=lambda: open(source, "wb").write(b"x"))
    writer.start()
    into = VideoInput(source)
    into.close()
    writer.join(10)
    assert into._file.closed


def test_a_file_named_dash_written_as_a_path_is_that_file_not_standard_input(tmp_path):
    # "./-" is the file named "-" here, as cat ./- reads it: Path() made it "-", and the
    # command read standard input instead ("standard input is empty: no picture came").
    (tmp_path / "-").write_bytes(png_bytes(10, 12))
    proc = command(tmp_path, "-i", "./-", "-o", "out/", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["-.png"]


def test_a_folder_named_dash_is_a_folder_for_input_and_output(tmp_path):
    # "-/" is a folder's name: Path() made it "-", standard input or output.
    (tmp_path / "in" / "-").mkdir(parents=True)
    (tmp_path / "in" / "-" / "a.png").write_bytes(png_bytes(10, 12))
    proc = command(tmp_path, "-i", "-/", "-o", "-/", cwd=tmp_path / "in")
    assert proc.returncode == 1 and b"is an input" in proc.stderr  # the folder, not the streams
    proc = command(tmp_path, "-i", "in/-/a.png", "-o", "-/", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"" and (tmp_path / "-" / "a.png").is_file()


def _waits_to_open(pid: int) -> bool:
    """Whether the process ``pid`` waits in open() for a FIFO's other end (Linux)."""
    with open(f"/proc/{pid}/wchan") as f:
        return f.read() == "wait_for_partner"


@pytest.mark.skipif(not os.path.exists("/proc/self/wchan"), reason="needs Linux's /proc/PID/wchan")
@pytest.mark.parametrize("drop_in", [False, True])
def test_ctrl_c_as_a_fifo_output_waits_for_its_reader_says_no_output_was_written(drop_in, tmp_path):
    # Both commands said only "interrupted", where a picture's run interrupted says
    # whether its output was written.
    from test_cli import DROPIN_MAIN
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    os.mkfifo(tmp_path / "out.png")
    cmd = [sys.executable, "-c", DROPIN_MAIN] if drop_in else [CMD]
    proc = subprocess.Popen([*cmd, "-i", "in.png", "-o", "out.png", *FAST], stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not _waits_to_open(proc.pid):
            assert time.monotonic() < deadline and proc.poll() is None, "the run never waited for its reader"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    prog = "realesrgan-ncnn-vulkan" if drop_in else "ncnn-sr"
    assert proc.returncode == 130 and err.splitlines()[-1] == f"{prog}: interrupted: no output was written", err
    assert sorted(os.listdir(tmp_path)) == ["in.png", "out.png"] and (tmp_path / "out.png").is_fifo()


def test_ctrl_c_as_a_fifo_outputs_reader_stopped_reading_says_it_got_part_and_ends(tmp_path):
    # The picture's bytes left in the writer's buffer were flushed as the stream closed,
    # into a reader that read no more: the command waited on it for ever.
    noise = np.random.default_rng(0).integers(0, 256, (160, 200, 3), dtype=np.uint8)  # 0.4 MB as a PNG, x2
    Image.fromarray(noise).save(tmp_path / "in.png")
    os.mkfifo(tmp_path / "out.png")
    proc = subprocess.Popen([CMD, "-i", "in.png", "-o", "out.png", *FAST], stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    reader = os.open(tmp_path / "out.png", os.O_RDONLY)  # and reads nothing once the pipe holds some
    try:
        assert select.select([reader], [], [], 120)[0], "nothing was written into the FIFO"
        time.sleep(0.5)  # the pipe full, the writer waits on it
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        os.close(reader)
    assert proc.returncode == 130 and err.splitlines()[-1] == "ncnn-sr: interrupted: out.png got only part of the " \
                                                              "picture", err


def _stream_folders(folder) -> list[str]:
    return sorted(p for p in os.listdir(folder) if p.startswith("ncnn-sr-stream-"))


def _reading_stdin(tmp_path, env) -> tuple[subprocess.Popen, str]:
    """A run of ``-i -`` waiting on standard input, and its temporary folder, once made."""
    before = set(_stream_folders(env["TMPDIR"]))
    proc = subprocess.Popen([CMD, "-i", "-", "-o", tmp_path / "o.png", *FAST], stdin=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    # Not one under the name it has for the instant before its lock (ncnn-sr-stream-new-*).
    while not (made := {p for p in _stream_folders(env["TMPDIR"]) if "-new-" not in p} - before):
        assert proc.poll() is None and time.monotonic() < deadline, "no temporary folder was made"
        time.sleep(0.02)
    return proc, made.pop()


def test_a_stream_folder_a_killed_run_left_goes_with_the_next_run_not_a_live_ones(tmp_path):
    # A run reading -i - (or writing -o -) that SIGKILL ended left its ncnn-sr-stream-*
    # in $TMPDIR, as large as the picture, for good: each such kill added one.
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    killed, stale = _reading_stdin(tmp_path, env)
    killed.kill()
    killed.communicate(timeout=60)
    (temp / stale / "input").write_bytes(b"x" * 1000)  # as a picture read halfway
    live, alive = _reading_stdin(tmp_path, env)
    # Named as ours but not locked (an earlier version's, or not ours at all): kept.
    (temp / "ncnn-sr-stream-abcd1234").mkdir()
    (temp / "ncnn-sr-stream-other").mkdir()
    try:
        proc = command(tmp_path, "-i", "-", "-o", "-", stdin=png_bytes(8, 8))  # its TMPDIR is temp
        assert proc.returncode == 0 and proc.stdout.startswith(b"\x89PNG"), proc.stderr
        assert proc.stderr == b""  # silently
        assert _stream_folders(temp) == sorted([alive, "ncnn-sr-stream-abcd1234", "ncnn-sr-stream-other"])
    finally:
        live.kill()
        live.communicate(timeout=60)


_PREFIX = "ncnn-sr-stream-"


def _killed_making_a_folder(temp, step: str) -> list[str]:
    """What part_files.temporary_folder left in ``temp`` where SIGKILL ended its run
    just after ``step`` (a function named as module.name) made its first call."""
    code = ("import fcntl, os, signal, sys, tempfile\n"
            "from ncnn_sr import part_files\n"
            "tempfile.tempdir = sys.argv[1]\n"
            "module, name = sys.argv[2].split('.')\n"
            "real = getattr(sys.modules[module], name)\n"
            "def then_killed(*args, **kwargs):\n"
            "    real(*args, **kwargs)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n"
            "setattr(sys.modules[module], name, then_killed)\n"
            f"part_files.temporary_folder({_PREFIX!r})\n")
    proc = subprocess.run([sys.executable, "-c", code, temp, step], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return sorted(os.listdir(temp))


def _aged(folder) -> None:
    """``folder`` and what it holds as last changed past part_files.NEW_AGE ago."""
    from ncnn_sr import part_files

    then = time.time() - part_files.NEW_AGE - 5
    for path in [*folder.iterdir(), folder]:
        os.utime(path, (then, then), follow_symlinks=False)


_MAKING = ("os.mkdir", "os.open", "fcntl.flock", "os.write")  # mkdtemp; the lock file made, locked, written


@pytest.mark.skipif(os.name == "nt", reason="no flock: no folder is proven stale")
@pytest.mark.parametrize("step", _MAKING)
def test_a_stream_folder_a_run_was_killed_making_goes_with_a_sweep_once_old(tmp_path, step):
    # A SIGKILL between mkdtemp and the lock file's one byte left a folder with no lock
    # file, or an empty one, that no run removed: a live run's looks so for that instant.
    from ncnn_sr import part_files

    left = _killed_making_a_folder(tmp_path, step)
    assert len(left) == 1 and left[0].startswith(_PREFIX)
    if step != "os.write":  # one just made may be a live run's: kept
        assert part_files.remove_stale_folders(str(tmp_path), _PREFIX) == 0
        assert os.listdir(tmp_path) == left
    _aged(tmp_path / left[0])
    assert part_files.remove_stale_folders(str(tmp_path), _PREFIX) == 1
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.name == "nt", reason="no flock: no folder is proven stale")
def test_an_old_stream_folder_being_made_whose_lock_is_held_is_kept(tmp_path, monkeypatch):
    import fcntl

    from ncnn_sr import part_files

    left = _killed_making_a_folder(tmp_path, "os.open")  # its lock file there, empty, not yet locked
    folder = tmp_path / left[0]
    _aged(folder)
    held = os.open(folder / part_files.FOLDER_LOCK, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # by its run, that stood still until now
        assert part_files.remove_stale_folders(str(tmp_path), _PREFIX) == 0
    finally:
        os.close(held)
    assert os.listdir(tmp_path) == left and os.listdir(folder) == [part_files.FOLDER_LOCK]
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    live, lock = part_files.temporary_folder(_PREFIX)  # a live run's, as old
    try:
        _aged(live)
        assert part_files.remove_stale_folders(str(tmp_path), _PREFIX) == 1  # the one above, its lock let go
        assert os.listdir(tmp_path) == [live.name] and os.listdir(live) == [part_files.FOLDER_LOCK]
    finally:
        os.close(lock)


@pytest.mark.skipif(os.name == "nt", reason="no flock: no folder is proven stale")
def test_old_folders_not_named_as_a_run_s_being_made_are_kept(tmp_path):
    # An empty folder named as a run's (an earlier version's, which made no lock file,
    # or another program's) may be live; so may one of another name.
    from ncnn_sr import part_files

    for name in ("ncnn-sr-stream-abcd1234", "ncnn-sr-stream-other", "other-abcd1234", "ncnn-sr-denoise-abcd1234"):
        (tmp_path / name).mkdir()
        _aged(tmp_path / name)
    kept = sorted(os.listdir(tmp_path))
    left = _killed_making_a_folder(tmp_path, "os.mkdir")
    (made,) = set(left) - set(kept)
    (tmp_path / made / "input").write_bytes(b"x")  # not what a run being made holds
    _aged(tmp_path / made)
    assert part_files.remove_stale_folders(str(tmp_path), _PREFIX) == 0
    assert sorted(os.listdir(tmp_path)) == left


@pytest.mark.skipif(os.name == "nt", reason="no flock: no folder is proven stale")
@pytest.mark.parametrize("step", ["open", "flock"])
def test_a_run_whose_folder_was_swept_as_it_stood_still_making_it_makes_another(tmp_path, monkeypatch, step):
    # Standing still past NEW_AGE between mkdtemp and its lock (here: as it was to make
    # or to lock its lock file), its folder looked like a killed run's to another run.
    import fcntl

    from ncnn_sr import part_files

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    real = {"open": os.open, "flock": fcntl.flock}[step]
    swept = []

    def swept_first(path_or_fd, *args, **kwargs):
        if not swept and (step == "flock" or os.fspath(path_or_fd).endswith(part_files.FOLDER_LOCK)):
            swept.append(True)
            for folder in tmp_path.iterdir():
                _aged(folder)
            swept.append(part_files.remove_stale_folders(str(tmp_path), _PREFIX))
        return real(path_or_fd, *args, **kwargs)
    monkeypatch.setattr(os if step == "open" else fcntl, step, swept_first)
    folder, lock = part_files.temporary_folder(_PREFIX)
    monkeypatch.undo()
    try:
        assert swept == [True, 1]
        assert os.listdir(tmp_path) == [folder.name] and os.listdir(folder) == [part_files.FOLDER_LOCK]
        assert lock is not None and part_files.remove_stale_folders(str(tmp_path), _PREFIX) == 0
        assert (folder / part_files.FOLDER_LOCK).read_bytes() == b"\0"
    finally:
        os.close(lock)
    assert part_files.remove_stale_folders(str(tmp_path), _PREFIX) == 1  # once its run is gone
