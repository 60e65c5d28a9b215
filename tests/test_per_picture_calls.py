"""What each picture of a folder run costs beyond the network: the checks a loader or
saver makes once a picture look at its own file, not again at every folder above it.
Counted calls, not times (a folder of 2000 16x16 pictures spent as much CPU on
these as on the network)."""
import builtins
import os

import pytest

from ncnn_sr import files, jobs


def _counting(monkeypatch, module, names=("stat", "lstat")):
    calls = []
    for name in names:
        real = getattr(os, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls.append((_name, os.fspath(args[0])))
            return _real(*args, **kwargs)

        monkeypatch.setattr(module.os, name, counted)
    return calls


def test_check_reachable_looks_at_the_output_not_every_folder_above(tmp_path, monkeypatch):
    folder = tmp_path / "a" / "b" / "c"
    folder.mkdir(parents=True)
    calls = _counting(monkeypatch, jobs)
    jobs.check_reachable(folder / "p.png", file=True)
    # Its folder is there: so is every folder above it. 10 stats at /tmp/x/p.png, more the deeper;
    # then 3 (its folder, whether the output is there, whether it is a link), now 2.
    assert len(calls) <= 2, calls
    assert not any(path in (os.fspath(tmp_path), os.fspath(tmp_path / "a")) for _, path in calls)


def test_target_size_at_a_whole_scale_takes_no_fraction(monkeypatch):
    from ncnn_sr import resample

    def refused(*args):
        raise AssertionError("a Fraction made")

    monkeypatch.setattr(resample, "Fraction", refused)
    # 4 calls a picture in a folder run, each parsing the scale's decimal (17 us).
    assert resample.target_size(16, 9, 2.0) == (32, 18)
    assert resample.target_size(3, 5, 4) == (12, 20)



def test_write_target_looks_at_a_new_file_once_a_question(tmp_path, monkeypatch):
    (tmp_path / "there.png").write_bytes(b"x")
    for name, most in (("new.png", 1), ("there.png", 2)):
        calls = _counting(monkeypatch, files)
        assert files.write_target(tmp_path / name, pipe=True) == tmp_path / name
        monkeypatch.undo()
        # Called twice a picture (the loader's check, the write): 5 stats each for a
        # new file, then 3; one lstat answers them all.
        assert len(calls) <= most, (name, calls)


def test_a_write_looks_at_its_new_file_once(tmp_path, monkeypatch):
    files.atomic_write(tmp_path / "first.png", lambda f: f.write(b"x"))  # the folder swept of stale parts
    calls = _counting(monkeypatch, files)
    files.atomic_write(tmp_path / "p.png", lambda f: f.write(b"y"))
    monkeypatch.undo()
    assert (tmp_path / "p.png").read_bytes() == b"y"
    # Its target checked (3 stats), then its mode and whether it is a FIFO asked of
    # it again (2 more), each letting the run's other threads in.
    assert calls == [("lstat", os.fspath(tmp_path / "p.png"))], calls


def test_a_write_by_a_relative_name_asks_for_the_current_folder_once(tmp_path, monkeypatch):
    import hashlib

    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    files.atomic_write("out/first.png", lambda f: f.write(b"x"))  # the folder swept of stale parts
    asked, hashed = [], []
    real_getcwd, real_sha256 = os.getcwd, hashlib.sha256
    monkeypatch.setattr(os, "getcwd", lambda: asked.append(1) or real_getcwd())
    monkeypatch.setattr(hashlib, "sha256", lambda *a: hashed.append(a) or real_sha256(*a))
    files.atomic_write("out/p.png", lambda f: f.write(b"y"))
    monkeypatch.undo()
    assert (tmp_path / "out" / "p.png").read_bytes() == b"y"
    assert not [name for name in os.listdir(tmp_path / "out") if name.endswith(".part")]
    # The sweep of stale parts and mkstemp each made the folder whole (a getcwd
    # each), and the part's name a hash that a short name never uses.
    assert (len(asked), hashed) == (1, []), (asked, hashed)


@pytest.mark.skipif(not os.path.exists("/proc/meminfo"), reason="Linux's /proc/meminfo")
def test_available_memory_is_read_without_a_text_file(monkeypatch):
    from ncnn_sr import budget

    with open("/proc/meminfo", encoding="ascii") as f:
        stated = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))

    def refused(*args, **kwargs):
        raise AssertionError("a file object made")

    # Read 3 times a picture: a text file object took 7 system calls a read (each
    # letting the other threads in), 130 us in a folder run's loaded threads.
    monkeypatch.setattr(builtins, "open", refused)
    found = budget._meminfo_available()
    monkeypatch.undo()
    assert abs(found - stated) < 256 << 20


def test_a_write_in_a_save_thread_looks_up_no_signal_handler(tmp_path, monkeypatch):
    import signal
    import threading

    looked = []
    real = signal.getsignal
    monkeypatch.setattr(signal, "getsignal", lambda sig: looked.append(sig) or real(sig))
    # Held in the main thread alone: a save thread's write looked up 6 handlers (12 us) for nothing.
    worker = threading.Thread(target=files.atomic_write, args=(tmp_path / "p.png", lambda f: f.write(b"x")))
    worker.start()
    worker.join()
    assert (tmp_path / "p.png").read_bytes() == b"x"
    assert looked == []
    files.atomic_write(tmp_path / "q.png", lambda f: f.write(b"y"))  # the main thread's are held
    assert looked


def _png_with_chunks(path, damaged=True):
    """A PNG whose colour and text chunks lie before its pixels and after them, and
    where ``damaged``, a text chunk among them with a wrong checksum and a colour
    chunk of a wrong size."""
    import io
    import struct
    import zlib

    import numpy as np
    from PIL import Image

    from ncnn_sr.png import chunk

    out = io.BytesIO()
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3)).save(out, format="PNG")
    data = out.getvalue()
    at = data.index(b"IDAT") - 4
    end = data.index(b"IEND") - 4
    bad = bytearray(chunk(b"tEXt", b"Broken\x00checksum"))
    bad[-1] ^= 0xFF
    before = (chunk(b"gAMA", struct.pack(">I", 45455)) + chunk(b"tEXt", b"A\x00one")
              + chunk(b"zTXt", b"B\x00\x00" + zlib.compress(b"two")))
    if damaged:
        before += chunk(b"cHRM", b"\x00" * 7) + bytes(bad)
    after = chunk(b"iTXt", b"C\x00\x00\x00\x00\x00three") + chunk(b"sRGB", b"\x00")
    path.write_bytes(data[:at] + before + data[at:end] + after + data[end:])
    return path


def test_a_png_read_after_its_header_check_is_opened_twice(tmp_path, monkeypatch):
    import builtins

    from ncnn_sr import images, png

    path = _png_with_chunks(tmp_path / "p.png", damaged=False)
    opened = []
    real = builtins.open

    def counted(file, *args, **kwargs):
        opened.append(os.fspath(file) if isinstance(file, (str, os.PathLike)) else file)
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counted)
    with png.walked(path):  # as the loader checks a picture's header, then reads it
        images.header_layout(path)
        images.read_image(path)
    monkeypatch.undo()
    # Pillow's opening, which the read takes from the header check, and the chunks
    # walked once for both. It was 8: Pillow's in each, and the text Pillow refuses,
    # the depth, and the colour and text chunks each looked for in a walk of their
    # own, in the header check and the read.
    assert opened.count(os.fspath(path)) == 2, opened


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="Linux's /proc/self/fd")
def test_a_png_opened_for_its_header_is_read_as_if_opened_anew_or_closed(tmp_path):
    import numpy as np

    from ncnn_sr import images, png

    def open_files():
        found = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                found.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:  # the listing's own, closed since
                pass
        return found

    path = _png_with_chunks(tmp_path / "p.png", damaged=False)
    pixels, info = images.read_image(path)
    with png.walked(path):
        images.header_layout(path)
        assert open_files().count(os.fspath(path)) == 1  # kept for the read
        again, again_info = images.read_image(path)
        assert open_files().count(os.fspath(path)) == 0
    assert np.array_equal(again, pixels) and again_info == info
    with png.walked(path):
        assert images.header_layout(path) == images.header_layout(os.fspath(path))
    assert open_files().count(os.fspath(path)) == 0  # no read took it: closed with the block


def test_a_png_walked_once_gives_what_each_walk_gave(tmp_path):
    from ncnn_sr import images, png

    path = _png_with_chunks(tmp_path / "p.png")
    questions = (png.png_header, png.has_refused_text, png.colour_chunks, png.text_chunks,
                 lambda p: png._read_chunks(p, lambda kind, length: kind in png.TEXT_KINDS, True, checked=False))
    alone = [ask(path) for ask in questions]
    assert alone[2] == ((b"gAMA", (45455).to_bytes(4, "big")),)  # before the pixels, and of its size
    assert [kind for kind, _ in alone[3]] == [b"tEXt", b"zTXt", b"iTXt"]  # the damaged one left out
    with png.walked(path):
        assert [ask(path) for ask in questions] == alone
        assert images.read_image(path)[1] == images.read_image(os.fspath(path))[1]
    assert images.read_image(path)[1].text_chunks == alone[3]
    with png.walked(tmp_path / "other.png"):  # a block for another file answers nothing of this one
        assert [ask(path) for ask in questions] == alone


def _sequential_jpeg(scans):
    """The markers of a sequential JPEG of 3 components whose scans code ``scans``
    (each a tuple of component ids), each followed by a little data."""
    import struct

    frame = bytes((8, 0, 16, 0, 16, 3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1))
    data = b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", 2 + len(frame)) + frame
    for ids in scans:
        body = bytes((len(ids), *(b for c in ids for b in (c, 0)), 0, 63, 0))
        data += b"\xff\xda" + struct.pack(">H", 2 + len(body)) + body + b"\x12\x34\x56"
    return data + b"\xff\xd9"


def test_a_sequential_jpeg_missing_a_component_is_told_without_counting_bits():
    from ncnn_sr import jpeg

    assert jpeg.missing_scans(_sequential_jpeg([(1, 2, 3)])) is None
    assert jpeg.missing_scans(_sequential_jpeg([(1,), (2,), (3,)])) is None
    assert jpeg.missing_scans(_sequential_jpeg([(1,), (3,)])) == (
        "JPEG: its data stops at an end marker after 2 scans, before its picture is whole", True)
    said, whole = jpeg.missing_scans(_sequential_jpeg([(1,)]), ended=False)
    assert whole and "after 1 scans" in said
