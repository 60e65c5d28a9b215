"""Each shell command the README shows, run as written on tiny files named as the
README names them, and its result checked against what the README says it does.

test_tools only parses them: a command that parsed but no longer did what its
comment says (an output named otherwise, another scale, a frame rate) went unseen.
The commands run in one folder, each on the inputs the README's names call for;
those that need what this machine may lack (two GPUs, the network, minutes of CPU)
are listed with the reason, and a command added to the README must be put in one
list or the other.
"""
from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from checkpoints import save_zip, tensor
from conftest import picture
from media import PULLDOWN, fields, film_frame, make_clip
from test_convert import random_compact
from test_tools import readme_shell_calls

ROOT = Path(__file__).resolve().parent.parent

# README commands not run here, with why.
NOT_RUN = {
    "ncnn-sr -i shots/ -o big/ -g 0,1 -t 200,100 -j 1:2,2:2": "needs two Vulkan devices",
    "ncnn-sr fetch realesrnet-x4plus": "downloads from GitHub",
    "ncnn-sr fetch realesr-general-x4v3 realesr-general-wdn-x4v3": "downloads from GitHub",
    "ncnn-sr -i photo.jpg -o photo_x4.png -n realesr-general-x4v3 -dn 0.3": "needs the fetched models",
    "ncnn-sr bench -n realesrgan-x4plus -t auto,200,400": "times realesrgan-x4plus on 256x256: minutes on a CPU",
    "ncnn-sr convert -i https://example.org/4x-Their.pth -o models/ --sha256 HEX": "downloads",
}
# What the README's stdin stands for where a command reads one: curl's picture,
# ffmpeg's Matroska.
STDIN = {
    "ncnn-sr -i - -o - -f webp": "photo.jpg",
    "ncnn-sr video -i - -o - -s 2": "clip.mkv",
}


def _vob(path: Path, images: list[np.ndarray]) -> None:
    """A DVD's MPEG-2 at 29.97 frames a second, coded as interlaced."""
    with av.open(str(path), "w", format="vob") as out:
        video = out.add_stream("mpeg2video", rate=Fraction(30000, 1001))
        video.width, video.height, video.pix_fmt = images[0].shape[1], images[0].shape[0], "yuv420p"
        video.codec_context.flags |= av.codec.context.Flags.interlaced_dct | av.codec.context.Flags.interlaced_me
        video.codec_context.options = {"qscale": "2"}
        for image in images:
            out.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(video.encode())


def _animation(path: Path, seed: int, **kwargs) -> None:
    frames = [Image.fromarray(picture(16, 16, seed=seed + i)) for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0, **kwargs)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The README's inputs, tiny: docs/sample.jpg is the README's own (128x96), photo.jpg
    32x24, the other pictures 16x16; the clips 32x24 (6 frames), DVD ones 32x32 and
    48x32, film.mkv 12 min 40 s at 1 fps."""
    here = tmp_path_factory.mktemp("readme")
    (here / "docs").mkdir()
    (here / "docs" / "sample.jpg").write_bytes((ROOT / "docs" / "sample.jpg").read_bytes())  # the README's own
    Image.fromarray(picture(24, 32)).save(here / "photo.jpg")
    for name in ("anime.png", "input.jpg", "shots/a.jpg", "shots/sub/b.png", "input_folder/x.png",
                 "input_folder/y.jpg"):
        (here / name).parent.mkdir(exist_ok=True)
        Image.fromarray(picture(16, 16, seed=len(name))).save(here / name)
    _animation(here / "reaction.gif", 0)
    _animation(here / "sticker.webp", 3, lossless=True)
    (here / "stickers").mkdir()
    _animation(here / "stickers" / "s.gif", 6)
    make_clip(here / "clip.mp4")
    make_clip(here / "clip.mkv")
    make_clip(here / "tape.mkv", interlaced=True)
    _vob(here / "dvd.vob", [fields(32, 32, i) for i in range(4)])
    telecined = []
    for group in range(2):
        for top, bottom in PULLDOWN:
            image = film_frame(32, 48, 4 * group + top).copy()
            image[1::2] = film_frame(32, 48, 4 * group + bottom)[1::2]
            telecined.append(image)
    _vob(here / "anime.vob", telecined)
    make_clip(here / "film.mkv", frames=760, rate=Fraction(1), audio=None, colours=[(90, 120, 200), (200, 90, 60)])
    (here / "season" / "s2").mkdir(parents=True)
    make_clip(here / "season" / "ep1.mp4", frames=3)
    make_clip(here / "season" / "s2" / "ep2.mkv", frames=3)
    save_zip(here / "4x-MyModel.pth", {"params_ema": {k: tensor(v) for k, v in random_compact(upscale=4).items()}})
    (here / "fetched").mkdir()
    return here


def size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def animation(path: Path) -> tuple[str, int, tuple[int, int]]:
    with Image.open(path) as image:
        return image.format, image.n_frames, image.size


def video(path: Path) -> tuple[int, set, Fraction, str, list[str]]:
    """Frames, their sizes, the stream's rate, its codec and the sound's codecs."""
    with av.open(str(path)) as made:
        shown = [(f.width, f.height) for f in made.decode(video=0)]
        stream = made.streams.video[0]
        sound = [a.codec_context.name for a in made.streams.audio]
        return len(shown), set(shown), stream.average_rate, stream.codec_context.name, sound


def converted(here: Path) -> None:
    """The README's convert, which its -m models -n 4x-MyModel runs after."""
    if not (here / "models" / "4x-MyModel.param").exists():
        run(here, ["ncnn-sr", "convert", "-i", "4x-MyModel.pth", "-o", "models/"])


def run(here: Path, words: list[str], stdin: Path | None = None) -> subprocess.CompletedProcess:
    module = "ncnn_sr" if words[0] == "ncnn-sr" else "ncnn_sr.dropin"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NCNN_SR_FETCHED_MODELS": str(here / "fetched")}
    with open(stdin, "rb") if stdin else open(os.devnull, "rb") as given:
        done = subprocess.run([sys.executable, "-m", module, *words[1:]], cwd=here, stdin=given,
                              capture_output=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done


def check(here: Path, command: str, done: subprocess.CompletedProcess) -> None:
    """What the README says of ``command``, on the inputs of ``folder``."""
    said = done.stdout.decode(errors="replace")
    told = done.stderr.decode(errors="replace")
    x4, x2 = (64, 64), (32, 32)
    pictures = {
        "ncnn-sr -i docs/sample.jpg -o sample_x4.png": ("sample_x4.png", (512, 384)),  # x4 with realesrgan-x4plus
        "ncnn-sr -i photo.jpg -o photo_x4.png": ("photo_x4.png", (128, 96)),  # realesrgan-x4plus, x4
        "ncnn-sr -i anime.png -o anime_x2.png -n realesr-animevideov3 -s 2": ("anime_x2.png", x2),
        "ncnn-sr -i photo.jpg -o photo.png -s 2.5": ("photo.png", (80, 60)),
        "ncnn-sr -i photo.jpg -o photo.png --width 1920": ("photo.png", (1920, 1440)),
        "ncnn-sr -i photo.jpg -o photo.png -g -1": ("photo.png", (128, 96)),
        "realesrgan-ncnn-vulkan -i input.jpg -o output.png": ("output.png", x4),  # realesr-animevideov3, -s 4
        "realesrgan-ncnn-vulkan -i input.jpg -o output.png -n realesrgan-x4plus": ("output.png", x4),
        "ncnn-sr -i photo.jpg -o photo_x4.png -m models -n 4x-MyModel": ("photo_x4.png", (128, 96)),
    }
    if command in pictures:
        name, shape = pictures[command]
        assert size(here / name) == shape
    elif command == "ncnn-sr -i - -o - -f webp":
        (here / "a_x4.webp").write_bytes(done.stdout)
        assert animation(here / "a_x4.webp") == ("WEBP", 1, (128, 96))
    elif command == "ncnn-sr -i shots/ -o big/ -f jpg --quality 92 --recursive":
        assert Image.open(here / "big" / "a.jpg").format == "JPEG" and size(here / "big" / "a.jpg") == x4
        assert size(here / "big" / "sub" / "b.jpg") == x4  # the tree mirrored
    elif command == "ncnn-sr -i shots/ -o big/ --skip-existing":
        assert size(here / "big" / "a.png") == x4
        again = run(here, COMMANDS[command])  # resumed: nothing left to do
        assert "1 picture: 0 upscaled, 1 skipped, 0 failed" in again.stderr.decode()
    elif command == "ncnn-sr models":
        assert any(line.split()[:3] == ["realesrgan-x4plus", "x4", "verified"] for line in said.splitlines())
    elif command == "ncnn-sr devices":
        assert any(line.split()[:2] == ["-1", "CPU"] for line in said.splitlines())
    elif command == "ncnn-sr convert -i 4x-MyModel.pth -o models/":
        # writes models/4x-MyModel.param and .bin
        assert (here / "models" / "4x-MyModel.param").is_file() and (here / "models" / "4x-MyModel.bin").is_file()
    elif command == "ncnn-sr --version":
        from ncnn_sr import __version__

        assert said.endswith(f", version {__version__}\n"), said  # run here as python -m ncnn_sr
    elif command == "ncnn-sr fetch":
        # what it can fetch, and what is fetched
        assert any(line.split()[:1] == ["realesrnet-x4plus"] and line.endswith("not fetched")
                   for line in said.splitlines()), said
    elif command == "realesrgan-ncnn-vulkan -i input_folder -o outputfolder -n realesr-animevideov3 -s 2 -f jpg":
        for name in ("x.jpg", "y.jpg"):
            assert Image.open(here / "outputfolder" / name).format == "JPEG"
            assert size(here / "outputfolder" / name) == x2
    elif command == "ncnn-sr -i reaction.gif -o reaction_x2.gif -n realesr-animevideov3 -s 2":
        assert animation(here / "reaction_x2.gif") == ("GIF", 3, x2)  # every frame, as a GIF
    elif command == "ncnn-sr -i sticker.webp -o sticker_x4.webp":
        assert animation(here / "sticker_x4.webp") == ("WEBP", 3, x4)
    elif command == "ncnn-sr -i stickers/ -o big/ -f webp":
        assert animation(here / "big" / "s.webp") == ("WEBP", 3, x4)
    elif command.startswith(("ncnn-sr video -i clip.mp4 -o clip_x2.mp4", "ncnn-sr -i clip.mkv -o clip_x2.mkv",
                             "realesrgan-ncnn-vulkan -i clip.mp4 -o out.mp4 -s 2")):
        out = command.split()[command.split().index("-o") + 1]
        assert video(here / out)[:4] == (6, {(64, 48)}, 24, "h264")
    elif command == "ncnn-sr video -i clip.mp4 -o out.mp4 --crf 16 --preset slow":
        assert video(here / "out.mp4")[:2] == (6, {(128, 96)})  # realesr-animevideov3's x4 file
    elif command == "ncnn-sr video -i clip.mp4 -o out.webm":
        assert video(here / "out.webm")[3:] == ("vp9", ["opus"])  # VP9, audio re-encoded to Opus
    elif command == "ncnn-sr video -i clip.mp4 -o out.mp4 --fps 30":
        count, _, rate, _, _ = video(here / "out.mp4")
        assert rate == 30 and count in (7, 8)  # constant 30 fps, same duration (6 frames at 24)
    elif command == "ncnn-sr video -i tape.mkv -o out.mkv --deinterlace on":
        assert "6 frames" in told and video(here / "out.mkv")[0] == 6
    elif command == "ncnn-sr video -i dvd.vob -o out.mp4 --field-rate":
        assert video(here / "out.mp4")[:3] == (8, {(128, 128)}, Fraction(60000, 1001))  # 60i to 60p
    elif command == "ncnn-sr video -i anime.vob -o out.mkv --deinterlace film":
        # telecined 29.97 back to 23.976: 10 frames of 8 film frames
        assert video(here / "out.mkv")[:3] == (8, {(192, 128)}, Fraction(24000, 1001))
    elif command == "ncnn-sr video -i film.mkv -o try.mkv --start 12:30 --duration 10":
        assert video(here / "try.mkv")[:2] == (10, {(128, 96)})  # ten seconds of 1 fps
    elif command == "ncnn-sr video -i - -o - -s 2":
        (here / "piped.mkv").write_bytes(done.stdout)
        assert video(here / "piped.mkv")[:2] == (6, {(64, 48)})
    elif command == "ncnn-sr video -i season/ -o season_x2/ -s 2 -r --skip-existing":
        assert video(here / "season_x2" / "ep1.mp4")[:2] == (3, {(64, 48)})
        assert video(here / "season_x2" / "s2" / "ep2.mkv")[:2] == (3, {(64, 48)})
    elif command == "ncnn-sr -i clip.mp4 -o upscaled/ -s 2":
        assert video(here / "upscaled" / "clip.mp4")[:2] == (6, {(64, 48)})  # the folder made
    else:
        raise AssertionError(f"README command not checked: {command}: add it here or to NOT_RUN")


# Each command once (the README shows some twice), as its words.
COMMANDS = {" ".join(words): words for words in readme_shell_calls()}


def test_each_readme_command_is_run_here_or_said_why_not():
    assert set(NOT_RUN) <= set(COMMANDS), set(NOT_RUN) - set(COMMANDS)
    assert len(COMMANDS) - len(NOT_RUN) >= 25


@pytest.mark.parametrize("command", [c for c in COMMANDS if c not in NOT_RUN])
def test_a_readme_command_does_what_the_readme_says(folder, command):
    if command.endswith("-m models -n 4x-MyModel"):
        converted(folder)
    stdin = folder / STDIN[command] if command in STDIN else None
    check(folder, command, run(folder, COMMANDS[command], stdin))
