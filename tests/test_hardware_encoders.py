"""Hardware video encoders (NVENC, Quick Sync, AMF) in PyAV's FFmpeg: the pixel
format they take chosen by default, and where the hardware is missing, a one-line
error that says what they need. This machine has none of them."""
from types import SimpleNamespace

import pytest

from media import make_clip
from ncnn_sr.video import EncodeOptions
from ncnn_sr.video_codecs import _pixel_format, _taken, video_encoder
from test_video import NCNN_SR, X2, one_line_failure, run


def test_a_format_an_encoder_lacks_becomes_its_semi_planar_twin():
    assert _taken("yuv420p", ["nv12", "qsv"]) == "nv12"
    assert _taken("yuv420p", ["yuv420p", "nv12"]) == "yuv420p"
    assert _taken("yuv420p", []) == "yuv420p"  # FFmpeg lists nothing for some encoders
    assert _taken("yuv420p10le", ["nv12", "p010le"]) == "p010le"


def test_quick_sync_gets_nv12_and_p010_by_default(tmp_path):
    assert video_encoder(tmp_path / "out.mp4", EncodeOptions(codec="h264_qsv")) == "h264_qsv"
    def source(pix_fmt):
        return SimpleNamespace(codec_context=SimpleNamespace(pix_fmt=pix_fmt))
    assert _pixel_format("hevc_qsv", source("yuv420p"), "in.mkv") == "nv12"
    assert _pixel_format("hevc_qsv", source("yuv420p10le"), "in.mkv") == "p010le"
    assert _pixel_format("libx264", source("yuv420p10le"), "in.mkv") == "yuv420p10le"


@pytest.mark.parametrize("codec,needs", [("h264_nvenc", "an NVIDIA GPU and its driver"),
                                         ("h264_qsv", "an Intel GPU with Quick Sync")])
def test_a_hardware_encoder_without_its_hardware_says_what_it_needs(codec, needs, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", "--codec", codec, *X2, check_ok=False)
    if proc.returncode == 0:
        pytest.skip(f"this machine has what {codec} needs")
    one_line_failure(proc, tmp_path, f"cannot encode with {codec}: ")
    assert f"({codec} needs {needs}" in proc.stderr
