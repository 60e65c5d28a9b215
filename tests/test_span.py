"""SPAN checkpoints converted to ncnn: the network against a numpy forward of the
PyTorch module as it trains (the four convolutions of each Conv3XC apart), so the
fusion into one convolution is checked too; its variants, its refusals, and the
converted model upscaling through the command. Random small weights."""
import numpy as np
import pytest
from PIL import Image

from checkpoints import save_zip, tensor
from conftest import picture
from ncnn_sr.convert import convert_weights
from ncnn_sr.engine import Upscaler
from ncnn_sr.errors import ModelError
from ncnn_sr.ncnn_graph import counted
from ncnn_sr.span import RGB_MEAN, fused_conv3xc
from test_convert import conv3x3, pixel_shuffle, run_ncnn
from test_convert_command import run

def random_span(blocks: int = 2, feat: int = 8, scale: int = 2, gain: int = 2, seed: int = 3, norm: bool = True,
                eval_conv: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    state = {}

    def conv(key, out, inc, k):
        state[f"{key}.weight"] = rng.normal(0, (1 / (k * k * inc)) ** 0.5, (out, inc, k, k)).astype(np.float32)
        state[f"{key}.bias"] = rng.normal(0, 0.05, out).astype(np.float32)

    def conv3xc(key, inc, out):
        conv(f"{key}.sk", out, inc, 1)
        conv(f"{key}.conv.0", inc * gain, inc, 1)
        conv(f"{key}.conv.1", out * gain, inc * gain, 3)
        conv(f"{key}.conv.2", out, out * gain, 1)
        if eval_conv:  # stale, as a checkpoint saved mid-training holds it
            conv(f"{key}.eval_conv", out, inc, 3)

    conv3xc("conv_1", 3, feat)
    for i in range(1, blocks + 1):
        for j in (1, 2, 3):
            conv3xc(f"block_{i}.c{j}_r", feat, feat)
    conv3xc("conv_2", feat, feat)
    conv("conv_cat", feat, 4 * feat, 1)
    conv("upsampler.0", 3 * scale * scale, feat, 3)
    if not norm:
        state["no_norm"] = np.zeros(0, np.float32)
    return state


def conv1x1(x, w, b):
    return np.einsum("oi,ihw->ohw", w[:, :, 0, 0], x) + b[:, None, None]


def conv3xc_forward(state, key, x):
    """Conv3XC as it trains: the input padded with zeros, then 1x1, 3x3 unpadded, 1x1;
    plus the 1x1 skip of the unpadded input."""
    g = state.get
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    y = conv1x1(padded, g(f"{key}.conv.0.weight"), g(f"{key}.conv.0.bias"))
    y = conv3x3(y, g(f"{key}.conv.1.weight"), g(f"{key}.conv.1.bias"))[:, 1:-1, 1:-1]
    y = conv1x1(y, g(f"{key}.conv.2.weight"), g(f"{key}.conv.2.bias"))
    return y + conv1x1(x, g(f"{key}.sk.weight"), g(f"{key}.sk.bias"))


def silu(x):
    return x / (1 + np.exp(-x))


def span_forward(state, x, blocks: int, scale: int):
    if "no_norm" not in state:
        x = (x - np.asarray(RGB_MEAN)[:, None, None]) * 255
    features = h = conv3xc_forward(state, "conv_1", x)
    first_out = None
    for i in range(1, blocks + 1):
        first = conv3xc_forward(state, f"block_{i}.c1_r", h)
        out = conv3xc_forward(state, f"block_{i}.c2_r", silu(first))
        out = conv3xc_forward(state, f"block_{i}.c3_r", silu(out))
        h = (out + h) * (1 / (1 + np.exp(-out)) - 0.5)
        first_out = h if first_out is None else first_out
    h = conv3xc_forward(state, "conv_2", h)
    h = conv1x1(np.concatenate([features, h, first_out, first]), state["conv_cat.weight"], state["conv_cat.bias"])
    h = conv3x3(h, state["upsampler.0.weight"], state["upsampler.0.bias"])
    return pixel_shuffle(h, scale) if scale > 1 else h


def test_one_convolution_does_what_a_conv3xcs_four_do():
    state = random_span(blocks=1, feat=4)
    x = np.random.default_rng(0).normal(0, 1, (3, 7, 9))
    w, b = fused_conv3xc(state, "conv_1")
    assert np.abs(conv3x3(x, w, b) - conv3xc_forward(state, "conv_1", x)).max() < 1e-5


@pytest.mark.parametrize("blocks,scale,gain,norm", [(2, 2, 2, True), (1, 4, 2, True), (2, 1, 1, False),
                                                    (6, 3, 2, True)])
def test_span_computes_the_pytorch_forward(tmp_path, blocks, scale, gain, norm):
    state = random_span(blocks=blocks, scale=scale, gain=gain, norm=norm)
    model = convert_weights(state, fp16=False)
    assert model.scale == scale and model.architecture.startswith(f"SPAN, {counted(blocks, 'block')}, 8 features, x{scale}")
    x = np.random.default_rng(1).uniform(0, 1, (3, 11, 13)).astype(np.float32)
    expected = span_forward(state, x.astype(np.float64), blocks, scale)
    got = run_ncnn(model, x, tmp_path)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-3 * max(1.0, np.abs(expected).max())


def test_a_stale_eval_conv_is_not_used(tmp_path):
    state = random_span(eval_conv=True)
    fresh = {k: v for k, v in state.items() if "eval_conv" not in k}
    x = np.random.default_rng(2).uniform(0, 1, (3, 9, 9)).astype(np.float32)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert np.array_equal(run_ncnn(convert_weights(state, fp16=False), x, tmp_path / "a"),
                          run_ncnn(convert_weights(fresh, fp16=False), x, tmp_path / "b"))


def test_a_span_under_a_trainers_prefix_converts():
    state = {f"net_g.{k}": v for k, v in random_span().items()}
    assert convert_weights(state).architecture.endswith("the weights under net_g.")


@pytest.mark.parametrize("change,message", [
    (lambda s: s.pop("block_2.c3_r.conv.1.bias"), "key block_2.c3_r.conv.1.bias is missing"),
    (lambda s: s.update({"upsampler.offset.weight": np.zeros((8, 8, 1, 1), np.float32)}),
     "keys not known for it (upsampler.offset.weight)"),
    (lambda s: s.pop("upsampler.0.weight"), "pixel-shuffle upsampler is expected"),
    (lambda s: s.update({"conv_cat.weight": np.zeros((8, 24, 1, 1), np.float32)}),
     "conv_cat.weight has shape (8, 24, 1, 1), expected (8, 32, 1, 1)"),
    (lambda s: s.update({"block_1.c1_r.conv.0.weight": np.zeros((5, 8, 1, 1), np.float32)}),
     "not the 1x1 convolution to a multiple of 8 channels"),
    # Found by fuzzing: no features was a ZeroDivisionError, no widening a gain of 0.
    (lambda s: s.update({"conv_1.sk.weight": np.zeros((0, 3, 1, 1), np.float32)}),
     "conv_1 takes a weight of shape (0, 3, 1, 1)"),
    (lambda s: s.update({"conv_1.conv.0.weight": np.zeros((0, 3, 1, 1), np.float32)}),
     "not the 1x1 convolution to a multiple of 3 channels"),
])
def test_a_span_that_is_not_one_is_a_one_line_error(change, message):
    state = random_span()
    change(state)
    with pytest.raises(ModelError, match=None) as e:
        convert_weights(state)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_converted_span_upscales_in_tiles_as_whole_and_through_the_command(tmp_path):
    state = random_span(scale=2)
    source = save_zip(tmp_path / "2x-Span.pth", {"params_ema": {k: tensor(v) for k, v in state.items()}})
    proc = run("convert", "-i", source, "-o", tmp_path / "models")
    assert proc.stdout.splitlines()[0].endswith("SPAN, 2 blocks, 8 features, x2")
    image = picture(40, 36)
    with Upscaler(str(tmp_path / "models" / "2x-Span.param"), device=-1) as whole, \
            Upscaler(str(tmp_path / "models" / "2x-Span.param"), device=-1, tile=32) as tiled:
        a, b = whole.upscale(image), tiled.upscale(image)
    assert a.shape == (80, 72, 3) and np.abs(a.astype(int) - b).mean() < 1
    Image.fromarray(image).save(tmp_path / "in.png")
    run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-g", "-1", "-n", tmp_path / "models" / "2x-Span.param")
    with Image.open(tmp_path / "out.png") as im:
        assert im.size == (72, 80)
