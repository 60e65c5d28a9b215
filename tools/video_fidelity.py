"""What deinterlacing, inverse telecine and reusing repeated frames do, measured on
clips made here with PyAV (tests/media.py), through the library's upscale_video.

  - interlaced: a bar moving right, each frame's odd lines shot half a frame after
    its even ones, coded as interlaced H.264; the combing (mean distance of a line
    from its neighbours' mean, grey levels) of the frames the upscaler gets, with
    --deinterlace off and auto;
  - telecine: 12 film frames telecined 3:2 to 15 interlaced ones; how far each frame
    the upscaler gets is from the film frame nearest it (grey levels), with off, auto
    (bwdif) and film;
  - repeats: a picture that moves every second frame (animation on twos), x264 crf
    18; wall time of upscale_video with and without reusing repeated frames, same
    model and device, alternated over --rounds.

    python tools/video_fidelity.py
    python tools/video_fidelity.py --size 640x480 --rounds 3
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import picture  # noqa: E402
from media import film_frame, make_clip, make_telecined_clip  # noqa: E402

from ncnn_sr.engine import Upscaler  # noqa: E402
from ncnn_sr.lanes import Lane, ordered_map  # noqa: E402
from ncnn_sr.repeats import Repeats  # noqa: E402
from ncnn_sr.video import EncodeOptions, upscale_video  # noqa: E402

from measure import positive, run_main, wxh  # noqa: E402


def combing(image: np.ndarray) -> float:
    grey = image.astype(np.float64).mean(axis=2)
    return float(np.abs(grey[1:-1] - (grey[:-2] + grey[2:]) / 2).mean())


def frames_seen(clip: Path, out: Path, mode: str) -> list[np.ndarray]:
    seen: list[np.ndarray] = []

    def recorded(images):
        for image in images:
            seen.append(image)
            yield image

    upscale_video(clip, out, recorded, EncodeOptions(deinterlace=mode))
    return seen


def on_twos(path: Path, width: int, height: int, frames: int = 48) -> Path:
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.options = {"crf": "18"}
        for i in range(frames):
            image = np.roll(picture(height, width, seed=0), (i // 2) * 3, axis=1)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode())
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=wxh, default="320x240", help="the repeats clip's size, WxH")
    parser.add_argument("--rounds", type=positive, default=2, help="timed runs of the repeats clip, each way")
    parser.add_argument("--model", default="realesr-animevideov3-x2",
                        help="the repeats clip's model (deinterlacing and telecine measure frames, not a model)")
    parser.add_argument("--device", default="-1", help="the repeats clip's device: an index, -1 or cpu")
    args = parser.parse_args()
    width, height = args.size
    if width % 2 or height % 2:
        parser.error(f"--size {width}x{height}: the clip is yuv420p, whose sides are even")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = make_clip(tmp / "interlaced.mp4", frames=8, width=64, height=48, interlaced=True, audio=None)
        for mode in ("off", "auto"):
            seen = frames_seen(clip, tmp / f"i-{mode}.mp4", mode)
            print(f"interlaced, --deinterlace {mode}: {len(seen)} frames, combing mean "
                  f"{np.mean([combing(a) for a in seen]):.2f}, worst {max(combing(a) for a in seen):.2f}")
        clip = make_telecined_clip(tmp / "telecined.mp4", film_frames=12, audio=None)
        film = [film_frame(64, 96, k).astype(np.float64) for k in range(12)]
        for mode in ("off", "auto", "film"):
            seen = frames_seen(clip, tmp / f"t-{mode}.mp4", mode)
            errors = [min(np.abs(a - f).mean() for f in film) for a in seen]
            print(f"telecined, --deinterlace {mode}: {len(seen)} frames, from the nearest film frame: mean "
                  f"{np.mean(errors):.1f}, worst {max(errors):.1f}, over 5: {sum(e > 5 for e in errors)}")
        clip = on_twos(tmp / "twos.mp4", width, height)
        device = int(args.device) if args.device.lstrip("-").isdigit() else args.device
        with Upscaler(args.model, device=device) as up:
            lanes = [Lane(up, workers=1)]

            def every(frames):
                return ordered_map(lanes, frames, lambda u, f: u.upscale(f))

            for r in range(args.rounds):
                for name in ("every frame", "repeats once"):
                    frames = every if name == "every frame" else Repeats(every)
                    start = time.perf_counter()
                    upscale_video(clip, tmp / "twos-out.mkv", frames)
                    reused = f", {frames.count} reused" if isinstance(frames, Repeats) else ""
                    print(f"repeats {width}x{height}, round {r + 1}, {name}: {time.perf_counter() - start:.2f} s"
                          f"{reused}")


if __name__ == "__main__":
    run_main(main)
