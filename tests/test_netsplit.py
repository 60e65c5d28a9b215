"""Cutting RRDBNet at its upsampler: the trunk on large windows, the head on small
pieces, and the same numbers as the whole network."""
import numpy as np
import pytest

from conftest import picture
from ncnn_sr import Upscaler, resolve_model
from ncnn_sr import engine as engine_mod
from ncnn_sr.models import parse_param
from ncnn_sr.netsplit import split_at_upsampler


def cut_of(name):
    spec = resolve_model(name)
    return spec, split_at_upsampler(spec.param_path.read_bytes(), spec.bin_path.read_bytes(), spec.output_blob)


@pytest.mark.parametrize("name", ["realesrgan-x4plus", "realesrgan-x4plus-anime"])
def test_rrdbnet_is_cut_before_its_first_upsampling_with_every_weight_on_one_side(name):
    spec, cut = cut_of(name)
    assert cut is not None and 2 <= cut.context <= 4
    assert len(cut.trunk_bin) + len(cut.head_bin) == spec.bin_path.stat().st_size
    trunk, head = parse_param(cut.trunk_param.encode()), parse_param(cut.head_param.encode())
    whole = parse_param(spec.param_path.read_bytes())
    assert len(trunk.layers) + len(head.layers) == len(whole.layers) + 1  # the head's own Input
    assert trunk.output_blob == head.input_blob == cut.cut_blob
    assert head.output_blob == spec.output_blob and head.layers[1].type == "Interp"


def test_a_network_without_an_upsampling_layer_is_not_cut():
    _, cut = cut_of("realesr-animevideov3-x4")  # ends in PixelShuffle
    assert cut is None


def param(*rows):
    return ("7767517\n%d %d\n" % (len(rows), 2 * len(rows)) + "\n".join(rows) + "\n").encode()


def test_a_head_that_reaches_back_past_the_cut_is_not_cut():
    text = param("Input in 0 1 data", "Split sp 1 2 data a b", "Interp up 1 1 a up 0=1 1=2.0 2=2.0",
                 "Interp up2 1 1 b up2 0=1 1=2.0 2=2.0", "BinaryOp add 2 1 up up2 out")
    assert split_at_upsampler(text, b"", "out") is None


def test_a_head_with_a_stride_or_an_unknown_layer_is_not_cut():
    strided = param("Input in 0 1 data", "Interp up 1 1 data up 0=1 1=2.0 2=2.0",
                    "Convolution c 1 1 up out 0=3 1=3 3=2 5=0 6=0")
    unknown = param("Input in 0 1 data", "Interp up 1 1 data up 0=1 1=2.0 2=2.0", "Softmax s 1 1 up out")
    assert split_at_upsampler(strided, b"", "out") is None
    assert split_at_upsampler(unknown, b"", "out") is None


def test_the_cut_network_gives_the_whole_networks_numbers(monkeypatch):
    # 40x52 pads to a 60x72 window: the head runs on several 48 px pieces, edges moved inward.
    image = picture(40, 52, seed=5)
    split = Upscaler("realesrgan-x4plus-anime", device=-1, tile=0)
    assert isinstance(split._net, engine_mod._SplitNetwork)
    monkeypatch.setattr(engine_mod, "split_at_upsampler", lambda *args: None)
    whole = Upscaler("realesrgan-x4plus-anime", device=-1, tile=0)
    assert isinstance(whole._net, engine_mod._Network)
    assert np.abs(split.upscale(image).astype(int) - whole.upscale(image)).max() <= 1


def test_the_cut_network_lets_the_cpu_take_larger_tiles(monkeypatch):
    split = Upscaler("realesrgan-x4plus", device=-1)
    monkeypatch.setattr(engine_mod, "split_at_upsampler", lambda *args: None)
    whole = Upscaler("realesrgan-x4plus", device=-1)
    monkeypatch.setattr(engine_mod.devices, "available_memory", lambda: 8 << 30)
    assert split._auto_tile(split._net, 2000, 2000) >= 2 * whole._auto_tile(whole._net, 2000, 2000)
