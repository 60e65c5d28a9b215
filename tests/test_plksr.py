"""RealPLKSR checkpoints converted to ncnn: the network against a numpy forward of
the PyTorch module (GroupNorm and layer-norm variants, with and without attention,
partial and whole large kernels, x1 to x4), its refusals, and the converted model
upscaling through the command. Random small weights."""
import math

import numpy as np
import pytest
from PIL import Image

from checkpoints import save_zip, tensor
from conftest import picture
from ncnn_sr import staged
from ncnn_sr.convert import convert_weights, write_model
from ncnn_sr.devices import CPU
from ncnn_sr.dysample import SAMPLE_REACH, UNBOUNDED, Offsets, offsets_of
from ncnn_sr.engine import Upscaler
from ncnn_sr.errors import ModelError
from ncnn_sr.models import DEFAULT_CPU_BYTES_PER_PIXEL
from ncnn_sr.ncnn_graph import counted
from ncnn_sr.netsplit import GroupNorm, plan_network
from ncnn_sr.network import Network, SplitNetwork
from ncnn_sr.param_file import parse_param
from ncnn_sr.tiles import pieces
from test_convert import pixel_shuffle, run_ncnn
from test_convert_command import run


def random_plksr(blocks: int = 2, dim: int = 8, pdim: int = 2, kernel: int = 5, scale: int = 2,
                 attention: bool = True, layer_norm: bool = False, seed: int = 4, paper: bool = False,
                 mixing: tuple[int, int] = (3, 3), dysample: str | None = None) -> dict:
    """RealPLKSR's keys (GroupNorm, or ``layer_norm``), or with ``paper`` PLKSR's, whose
    channel mixer's kernels ``mixing`` says (CCM: 3, 1); ``dysample`` ("dynamic" or
    "static" scope) adds a DySample upsampler as traiNNer-redux makes it."""
    rng = np.random.default_rng(seed)
    state = {}

    def conv(key, out, inc, k):
        state[f"{key}.weight"] = rng.normal(0, (1 / (k * k * inc)) ** 0.5, (out, inc, k, k)).astype(np.float32)
        state[f"{key}.bias"] = rng.normal(0, 0.05, out).astype(np.float32)

    mixer = "channe_mixer" if paper else "channel_mixer"
    conv("feats.0", dim, 3, 3)
    for i in range(1, blocks + 1):
        key = f"feats.{i}"
        conv(f"{key}.{mixer}.0", 2 * dim, dim, mixing[0])
        conv(f"{key}.{mixer}.2", dim, 2 * dim, mixing[1])
        conv(f"{key}.lk.conv", pdim, pdim, kernel)
        if attention:
            conv(f"{key}.attn.f.0", dim, dim, 3)
        conv(f"{key}.refine", dim, dim, 1)
        if not paper:
            norm = "layer_norm" if layer_norm else "norm"
            state[f"{key}.{norm}.weight"] = rng.uniform(0.5, 1.5, dim).astype(np.float32)
            state[f"{key}.{norm}.bias"] = rng.normal(0, 0.1, dim).astype(np.float32)
    conv(f"feats.{blocks + (1 if paper else 2)}", 3 * scale * scale, dim, 3)
    if dysample:
        state.update(random_dysample(rng, scale, dysample == "dynamic"))
    return state


def random_dysample(rng, scale: int, scope: bool, groups: int | None = None, end: bool = True,
                    spread: float = 1.0) -> dict:
    """A DySample's keys on 3 x scale² channels, traiNNer-redux's groups (3 at odd
    scales, else 4) unless ``groups``; offsets of about ``spread`` pixels."""
    channels = 3 * scale * scale
    groups = groups or (3 if scale % 2 else 4)
    n = 2 * groups * scale * scale
    state = {"to_img.offset.weight": rng.normal(0, spread / channels ** 0.5, (n, channels, 1, 1)).astype(np.float32),
             "to_img.offset.bias": rng.normal(0, spread / 2, n).astype(np.float32)}
    if scope:
        state["to_img.scope.weight"] = rng.normal(0, 1 / channels ** 0.5, (n, channels, 1, 1)).astype(np.float32)
    state["to_img.init_pos"] = init_pos(scale, groups)
    if end:
        state["to_img.end_conv.weight"] = rng.normal(0, channels ** -0.5, (3, channels, 1, 1)).astype(np.float32)
        state["to_img.end_conv.bias"] = rng.normal(0, 0.05, 3).astype(np.float32)
    return state


def init_pos(scale: int, groups: int) -> np.ndarray:
    """DySample's buffer: where each of a pixel's scale² samples sits, x then y, in
    input pixels from the pixel's centre."""
    steps = (np.arange(scale) - (scale - 1) / 2) / scale
    x = np.tile(np.tile(steps, scale), groups)  # j, the column of the sample, fastest
    y = np.tile(np.repeat(steps, scale), groups)
    return np.concatenate([x, y]).astype(np.float32).reshape(1, -1, 1, 1)


def bilinear_border(plane: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``plane`` (H x W) at the points (x, y) in pixels, bilinearly, coordinates
    clamped to the plane."""
    h, w = plane.shape
    x, y = np.clip(x, 0, w - 1), np.clip(y, 0, h - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    top = plane[y0, x0] * (1 - fx) + plane[y0, x1] * fx
    bottom = plane[y1, x0] * (1 - fx) + plane[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def dysample_forward(state: dict, x: np.ndarray, scale: int) -> np.ndarray:
    """DySample on ``x`` (C x H x W), sample by sample."""
    c, h, w = x.shape
    g = state.get
    offset = conv(x, g("to_img.offset.weight"), g("to_img.offset.bias"))
    if "to_img.scope.weight" in state:
        offset = offset * sigmoid(conv(x, g("to_img.scope.weight"), np.zeros(len(offset)))) * 0.5
    else:
        offset = offset * 0.25
    offset = offset + g("to_img.init_pos").reshape(-1, 1, 1)
    groups = len(offset) // (2 * scale * scale)
    # Channel (axis, group, i, j): output pixel (h s + i, w s + j) of the group.
    offset = offset.reshape(2, groups, scale, scale, h, w)
    cols, rows = np.meshgrid(np.arange(w), np.arange(h))
    out = np.zeros((c, h * scale, w * scale))
    per = c // groups
    for group in range(groups):
        for i in range(scale):
            for j in range(scale):
                px, py = cols + offset[0, group, i, j], rows + offset[1, group, i, j]
                for ch in range(group * per, (group + 1) * per):
                    out[ch, i::scale, j::scale] = bilinear_border(x[ch], px, py)
    if "to_img.end_conv.weight" in state:
        out = conv(out, g("to_img.end_conv.weight"), g("to_img.end_conv.bias"))
    return out


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A convolution of any odd square kernel, padded with zeros to keep the size."""
    c, h, wd = x.shape
    k = w.shape[2]
    p = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2)))
    cols = np.stack([p[:, dy:dy + h, dx:dx + wd] for dy in range(k) for dx in range(k)], 1)
    return np.einsum("oik,ikhw->ohw", w.reshape(w.shape[0], c, k * k), cols) + b[:, None, None]


def mish(x):
    return x * np.tanh(np.logaddexp(0, x))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def group_norm(x, groups, gamma, beta, eps=1e-5):
    g = x.reshape(groups, -1)
    g = (g - g.mean(1, keepdims=True)) / np.sqrt(g.var(1, keepdims=True) + eps)
    return g.reshape(x.shape) * gamma[:, None, None] + beta[:, None, None]


def layer_norm(x, gamma, beta, eps=1e-6):
    u = x.mean(0, keepdims=True)
    s = ((x - u) ** 2).mean(0, keepdims=True)
    return (x - u) / np.sqrt(s + eps) * gamma[:, None, None] + beta[:, None, None]


def gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def plksr_forward(state: dict, x: np.ndarray, blocks: int, scale: int) -> np.ndarray:
    g = state.get
    paper = "feats.1.channe_mixer.0.weight" in state
    mixer, act = ("channe_mixer", gelu) if paper else ("channel_mixer", mish)
    h = conv(x, g("feats.0.weight"), g("feats.0.bias"))
    for i in range(1, blocks + 1):
        key, skip = f"feats.{i}", h
        if f"{key}.layer_norm.weight" in state:
            h = layer_norm(h, g(f"{key}.layer_norm.weight"), g(f"{key}.layer_norm.bias"))
        h = act(conv(h, g(f"{key}.{mixer}.0.weight"), g(f"{key}.{mixer}.0.bias")))
        h = conv(h, g(f"{key}.{mixer}.2.weight"), g(f"{key}.{mixer}.2.bias"))
        pdim = g(f"{key}.lk.conv.weight").shape[0]
        h = np.concatenate([conv(h[:pdim], g(f"{key}.lk.conv.weight"), g(f"{key}.lk.conv.bias")), h[pdim:]])
        if f"{key}.attn.f.0.weight" in state:
            h = h * sigmoid(conv(h, g(f"{key}.attn.f.0.weight"), g(f"{key}.attn.f.0.bias")))
        h = conv(h, g(f"{key}.refine.weight"), g(f"{key}.refine.bias"))
        if f"{key}.norm.weight" in state:
            h = group_norm(h, 4, g(f"{key}.norm.weight"), g(f"{key}.norm.bias"))
        h = h + skip
    last = f"feats.{blocks + (1 if paper else 2)}"
    h = conv(h, g(f"{last}.weight"), g(f"{last}.bias")) + np.repeat(x, scale * scale, 0)
    if "to_img.offset.weight" in state:
        return dysample_forward(state, h, scale)
    return pixel_shuffle(h, scale) if scale > 1 else h


@pytest.mark.parametrize("blocks,pdim,scale,attention,norm", [
    (2, 2, 2, True, "group"), (1, 8, 4, True, "group"), (2, 3, 1, False, "group"), (3, 2, 3, True, "layer"),
    (1, 8, 2, False, "layer"),
])
def test_realplksr_computes_the_pytorch_forward(tmp_path, blocks, pdim, scale, attention, norm):
    state = random_plksr(blocks=blocks, pdim=pdim, scale=scale, attention=attention, layer_norm=norm == "layer")
    model = convert_weights(state, fp16=False)
    assert model.scale == scale
    assert model.architecture.startswith(f"RealPLKSR, {counted(blocks, 'block')}, 8 features, 5x5 kernel on {pdim}, ")
    assert ("no attention" in model.architecture) != attention
    x = np.random.default_rng(1).uniform(0, 1, (3, 11, 13)).astype(np.float32)
    expected = plksr_forward(state, x.astype(np.float64), blocks, scale)
    got = run_ncnn(model, x, tmp_path)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-3 * max(1.0, np.abs(expected).max())


def test_a_realplksr_under_a_trainers_prefix_converts():
    state = {f"params_ema.{k}": v for k, v in random_plksr().items()}
    assert convert_weights(state).architecture.endswith("the weights under params_ema.")


@pytest.mark.parametrize("change,message", [
    (lambda s: s.pop("feats.2.refine.bias"), "key feats.2.refine.bias is missing"),
    (lambda s: s.update({"to_img.offset.weight": np.zeros((8, 8, 1, 1), np.float32)}),
     "to_img.offset.weight has shape (8, 8, 1, 1): a DySample upsampler's 1x1 convolution of 12 channels"),
    (lambda s: s.update({"feats.1.layer_norm.weight": np.ones(8, np.float32),
                         "feats.1.layer_norm.bias": np.zeros(8, np.float32)}), "both norm and layer_norm"),
    (lambda s: s.update({"feats.1.lk.conv.weight": np.zeros((2, 2, 4, 4), np.float32)}), "an odd kernel"),
    (lambda s: s.update({"feats.4.weight": np.zeros((10, 8, 3, 3), np.float32)}), "3 x scale² are expected"),
    (lambda s: s.update({"feats.1.norm.weight": np.ones(6, np.float32)}),
     "feats.1.norm.weight has shape (6,), expected (8,)"),
])
def test_a_realplksr_that_is_not_one_is_a_one_line_error(change, message):
    state = random_plksr()
    change(state)
    with pytest.raises(ModelError) as e:
        convert_weights(state)
    assert message in str(e.value) and "\n" not in str(e.value)


# --- DySample ---------------------------------------------------------------------------


@pytest.mark.parametrize("scale,scope,norm,end", [
    (2, "dynamic", "layer", True), (3, "static", "group", True), (4, "dynamic", "group", True),
    (1, "dynamic", "layer", False),
])
def test_realplksr_with_dysample_computes_the_pytorch_forward(tmp_path, scale, scope, norm, end):
    state = random_plksr(scale=scale, layer_norm=norm == "layer", dysample=scope)
    if not end:  # traiNNer-redux's x1 DySample has none
        del state["to_img.end_conv.weight"], state["to_img.end_conv.bias"]
    model = convert_weights(state, fp16=False)
    groups = 3 if scale % 2 else 4
    assert model.scale == scale
    assert model.architecture.endswith(f", DySample upsampler ({groups} groups, {scope} scope), x{scale}")
    x = np.random.default_rng(1).uniform(0, 1, (3, 11, 13)).astype(np.float32)
    expected = plksr_forward(state, x.astype(np.float64), 2, scale)
    got = run_ncnn(model, x, tmp_path)
    assert got.shape == expected.shape == (3, 11 * scale, 13 * scale)
    assert np.abs(got - expected).max() < 1e-4 * max(1.0, np.abs(expected).max())


# Outputs of PyTorch 2.13's grid_sample RealPLKSR (tools/checkpoint_crosscheck.py's) for
# random_plksr(scale=..., dysample=..., seed=...) on uniform(0, 1, (3, 7, 9)) of seed 0,
# at (channel, row, column): they tie the numpy forward above to PyTorch's.
PYTORCH_DYSAMPLE = {
    (2, "dynamic", True, 10): {(0, 0, 0): 0.401263, (1, 5, 7): -1.37773, (2, 13, 17): 0.179343,
                               (0, 3, 3): 0.720842, (1, 13, 17): 0.147937, (2, 6, 0): -0.156811},
    (3, "static", False, 11): {(0, 0, 0): 0.635226, (1, 5, 7): -0.370107, (2, 13, 17): 0.203734,
                               (0, 5, 3): -0.337902, (1, 20, 26): 0.23142, (2, 6, 0): 1.132368},
}


@pytest.mark.parametrize("case", list(PYTORCH_DYSAMPLE))
def test_dysample_gives_the_numbers_pytorch_gave(tmp_path, case):
    scale, scope, layer, seed = case
    state = random_plksr(scale=scale, dysample=scope, layer_norm=layer, seed=seed)
    x = np.random.default_rng(0).uniform(0, 1, (3, 7, 9)).astype(np.float32)
    got = run_ncnn(convert_weights(state, fp16=False), x, tmp_path)
    reference = plksr_forward(state, x.astype(np.float64), 2, scale)
    for at, value in PYTORCH_DYSAMPLE[case].items():
        assert got[at] == pytest.approx(value, abs=2e-5) and reference[at] == pytest.approx(value, abs=2e-6)


def pixel_unshuffle(x: np.ndarray, s: int) -> np.ndarray:
    c, h, w = x.shape
    return x.reshape(c, h // s, s, w // s, s).transpose(0, 2, 4, 1, 3).reshape(c * s * s, h // s, w // s)


def bilinear_upsample(x: np.ndarray, s: int) -> np.ndarray:
    """Each channel resized s times, bilinearly, half-pixel centres, edges repeated."""
    c, h, w = x.shape

    def taps(n):
        src = np.clip((np.arange(n * s) + 0.5) / s - 0.5, 0, n - 1)
        low = np.floor(src).astype(int)
        return low, np.minimum(low + 1, n - 1), src - low

    (y0, y1, fy), (x0, x1, fx) = taps(h), taps(w)
    rows = x[:, y0] * (1 - fy)[:, None] + x[:, y1] * fy[:, None]
    return rows[:, :, x0] * (1 - fx) + rows[:, :, x1] * fx


@pytest.mark.parametrize("scale", [2, 3])
def test_a_dysample_of_zero_offsets_is_bilinear_upsampling(tmp_path, scale):
    # init_pos alone puts each sample where bilinear upsampling reads.
    state = random_plksr(scale=scale, dysample="dynamic")
    state["to_img.offset.weight"][:] = 0
    state["to_img.offset.bias"][:] = 0
    plain = {k: v for k, v in state.items() if not k.startswith("to_img.")}
    x = np.random.default_rng(2).uniform(0, 1, (3, 10, 12)).astype(np.float32)
    for folder in ("plain", "dysample"):
        (tmp_path / folder).mkdir()
    before = pixel_unshuffle(run_ncnn(convert_weights(plain, fp16=False), x, tmp_path / "plain"), scale)
    expected = conv(bilinear_upsample(before.astype(np.float64), scale), state["to_img.end_conv.weight"],
                    state["to_img.end_conv.bias"])
    got = run_ncnn(convert_weights(state, fp16=False), x, tmp_path / "dysample")
    assert np.abs(got - expected).max() < 1e-4


@pytest.mark.parametrize("change,message", [
    (lambda s: s.update({"to_img.offset.weight": np.zeros((32, 3, 1, 1), np.float32)}),
     "to_img.offset.weight has shape (32, 3, 1, 1)"),  # DySample's "pl" form: not traiNNer's
    (lambda s: (s.pop("to_img.end_conv.weight"), s.pop("to_img.end_conv.bias")),
     "without to_img.end_conv gives 12 channels, not 3"),
    (lambda s: s.pop("to_img.init_pos"), "key to_img.init_pos is missing"),
    (lambda s: s.pop("to_img.offset.weight"), "without to_img.offset.weight"),
    (lambda s: s.update({"to_img.end_conv.weight": np.zeros((3, 12, 2, 2), np.float32)}), "an odd square kernel"),
    (lambda s: s.update({"to_img.scope.bias": np.zeros(32, np.float32)}), "keys not known for it (to_img.scope.bias)"),
])
def test_a_dysample_that_is_not_one_is_a_one_line_error(change, message):
    state = random_plksr(dysample="dynamic")
    change(state)
    with pytest.raises(ModelError) as e:
        convert_weights(state)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("layer_norm", [True, False])
def test_dysample_realplksr_tiled_is_the_whole_pictures(tmp_path, layer_norm):
    spec = plksr_model(tmp_path, blocks=2, kernel=7, layer_norm=layer_norm, dysample="dynamic")
    image = two_halves()
    with Upscaler(spec, device=-1, tile=400, precision="fp32") as whole, \
            Upscaler(spec, device=-1, tile=32, precision="fp32") as tiled:
        want, got = whole.upscale(image), tiled.upscale(image)
    assert got.shape == (180, 140, 3)
    assert np.abs(got.astype(int) - want).max() <= 1


def test_dysample_offsets_say_how_far_its_samples_reach():
    n, c = 8, 12
    zero, features = np.zeros((n, c), np.float32), np.ones((c, 2, 3), np.float32)

    def reach(twice_x: float, scopes=None) -> int:
        return Offsets((zero, zero), (np.full(n, twice_x, np.float32), np.zeros(n, np.float32)), scopes).reach(features)
    assert reach(5.0) == SAMPLE_REACH  # 2.5 pixels out: what the head's plan counts
    # 7 pixels and under half of init_pos: floor(i - 7.5) and the pixel after it.
    assert reach(-14.0) == 9
    assert reach(-14.0, (zero, zero)) == 5  # a scope of sigmoid(0) halves it
    assert reach(np.inf) == UNBOUNDED  # the whole map, whose output then says what is wrong


@pytest.mark.parametrize("scope", ["static", "dynamic"])
def test_dysample_offsets_are_read_back_from_the_converted_model(tmp_path, scope):
    state = random_plksr(dysample=scope)
    spec = write_model(convert_weights(state, fp16=False), tmp_path, "plksr")
    offsets = offsets_of(parse_param(spec.param_path.read_bytes()), spec.bin_path.read_bytes())
    w, b = state["to_img.offset.weight"][:, :, 0, 0], state["to_img.offset.bias"]
    twice = 1.0 if scope == "dynamic" else 0.5  # of 0.5 (a sigmoid's) or 0.25, in pixels
    half = len(b) // 2
    assert np.allclose(offsets.weights[1], w[half:] * twice) and np.allclose(offsets.biases[0], b[:half] * twice)
    assert (offsets.scopes is None) == (scope == "static")
    if offsets.scopes is not None:
        assert np.allclose(offsets.scopes[1], state["to_img.scope.weight"][half:, :, 0, 0])


def test_a_dysample_piece_gets_the_context_its_neighbours_samples_need(tmp_path):
    # A 5x5 end convolution at x2 reads the samples of the cells just past a piece:
    # those reach 10 pixels here, the piece's own samples none.
    state = random_plksr(blocks=1, kernel=5)
    rng = np.random.default_rng(5)
    state.update(random_dysample(rng, 2, scope=False))
    weight = np.zeros_like(state["to_img.offset.weight"])
    weight[:, 0] = 40  # 0.25 x 40 pixels for each unit of channel 0, in x and y alike
    state["to_img.offset.weight"], state["to_img.offset.bias"] = weight, np.zeros_like(state["to_img.offset.bias"])
    state["to_img.end_conv.weight"] = rng.normal(0, 0.1, (3, 12, 5, 5)).astype(np.float32)
    spec = write_model(convert_weights(state, fp16=False), tmp_path, "plksr")
    param = spec.param_path.read_bytes()
    plan = plan_network(param, spec.input_blob, spec.output_blob)
    net = Network(str(spec.param_path), str(spec.bin_path), CPU, spec.input_blob, spec.output_blob)
    split = SplitNetwork(net, plan, 8, offsets=offsets_of(parse_param(param), spec.bin_path.read_bytes()))
    features = rng.normal(0, 0.3, (12, 30, 30)).astype(np.float32)
    features[0] = 0
    c = plan.head_context
    first = next(pieces(30, 30, (0, 30, 0, 30), 8 + 2 * c, c))[1]
    features[0, :, first.end] = 1  # the column just right of the first pieces
    try:
        whole = net.extract({plan.cut_blob: features}, spec.output_blob).transpose(1, 2, 0)
        got = np.empty_like(whole)
        for row, col, s, out in split.head(features, (0, 30, 0, 30)):
            got[row.start * s:row.end * s, col.start * s:col.end * s] = out
    finally:
        net.release()
    assert np.abs(got - whole).max() < 1e-4, np.abs(got - whole).max()


@pytest.mark.parametrize("scope", ["static", "dynamic"])
def test_dysample_of_far_reaching_offsets_tiled_is_the_whole_pictures(tmp_path, scope):
    # Neither scope bounds an offset: the scope scales (by 0.25, or a sigmoid's 0 to 0.5)
    # a convolution of unbounded features. A GroupNorm RealPLKSR runs its head in
    # pieces, tiled or not, so "whole" is the network run once on the whole picture.
    state = random_plksr(blocks=2, kernel=7)
    state.update(random_dysample(np.random.default_rng(7), 2, scope == "dynamic", spread=4))
    image = two_halves()
    x = np.ascontiguousarray(image.transpose(2, 0, 1), np.float32) / 255
    plain = {k: v for k, v in state.items() if not k.startswith("to_img.")}
    for folder in ("plain", "whole", "model"):
        (tmp_path / folder).mkdir()
    trunk = pixel_unshuffle(run_ncnn(convert_weights(plain, fp16=False), x, tmp_path / "plain"), 2)
    offsets = conv(trunk.astype(np.float64), state["to_img.offset.weight"], state["to_img.offset.bias"])
    offsets *= 0.25 if scope == "static" else \
        0.5 * sigmoid(conv(trunk.astype(np.float64), state["to_img.scope.weight"], np.zeros(len(offsets))))
    assert np.abs(offsets).max() > 6  # past the 2.5 pixels the head's planned context of 5 allows
    whole = run_ncnn(convert_weights(state, fp16=False), x, tmp_path / "whole")
    want = np.floor(np.clip(whole, 0, 1) * 255 + 0.5).astype(int).transpose(1, 2, 0)
    spec = write_model(convert_weights(state, fp16=False), tmp_path / "model", "plksr")
    with Upscaler(spec, device=-1, tile=32, precision="fp32") as tiled:
        got = tiled.upscale(image)
    assert np.abs(got.astype(int) - want).max() <= 1


def test_a_groupnorm_realplksr_with_dysample_is_staged_up_to_the_upsampler(tmp_path):
    spec = plksr_model(tmp_path, blocks=2, kernel=7, dysample="static")
    plan = plan_network(spec.param_path.read_bytes(), spec.input_blob, spec.output_blob)
    layers = parse_param(spec.param_path.read_bytes()).layers
    residual = next(layer for layer in layers if layer.name == "residual")
    assert plan.cut_blob == residual.tops[0]
    assert [s.norm.layer if s.norm else None for s in plan.stages] == [None, "feats.1.norm", "feats.2.norm", None]
    assert plan.head_context == 5  # the samples' reach (4), then the 1x1 end convolution


def test_a_dysample_model_is_estimated_from_its_layers(tmp_path):
    # Its GridSamples' outputs, at 16 pixels for each input pixel, outweigh the body;
    # unestimated it would get RRDBNet's 64 kB (measured, dim 64 x4: 19.6 kB, plain 5.8).
    specs = []
    for upsampler in (None, "dynamic"):
        (tmp_path / str(upsampler)).mkdir()
        specs.append(plksr_model(tmp_path / str(upsampler), scale=4, dim=64, pdim=16, dysample=upsampler))
    plain, sampled = (spec.cpu_bytes_per_pixel for spec in specs)
    assert plain < sampled < DEFAULT_CPU_BYTES_PER_PIXEL


def test_dysample_runs_on_vulkan_as_on_the_cpu(tmp_path, gpu):
    spec = plksr_model(tmp_path, layer_norm=True, dysample="dynamic", scale=2)
    image = picture(20, 18)
    with Upscaler(spec, device=-1, precision="fp32") as cpu, Upscaler(spec, device=gpu, precision="fp32") as vulkan:
        assert np.abs(vulkan.upscale(image).astype(int) - cpu.upscale(image)).max() <= 1


def test_dysample_runs_in_float32_on_a_gpu_by_default(tmp_path, gpu):
    # Its grid's coordinates in fp16 put samples off by up to 1/2048 of the tile's side:
    # 51 dB from fp32 at 192 px tiles on lavapipe, worse on a GPU's larger tiles.
    spec = plksr_model(tmp_path, layer_norm=True, dysample="dynamic", scale=2)
    image = picture(40, 36)
    with Upscaler(spec, device=gpu) as default, Upscaler(spec, device=gpu, precision="fp32") as exact:
        assert np.array_equal(default.upscale(image), exact.upscale(image))


@pytest.mark.parametrize("mixing,name", [((3, 1), "CCM"), ((1, 3), "ICCM"), ((3, 3), "DCCM")])
def test_plksr_of_the_paper_computes_the_pytorch_forward(tmp_path, mixing, name):
    state = random_plksr(paper=True, mixing=mixing, scale=3)
    model = convert_weights(state, fp16=False)
    assert model.architecture == f"PLKSR, 2 blocks, 8 features, 5x5 kernel on 2, {name}, x3"
    x = np.random.default_rng(1).uniform(0, 1, (3, 9, 10)).astype(np.float32)
    expected = plksr_forward(state, x.astype(np.float64), 2, 3)
    got = run_ncnn(model, x, tmp_path)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-3 * max(1.0, np.abs(expected).max())


@pytest.mark.parametrize("change,message", [
    (lambda s: s.update({"feats.1.lk.convs.0.weight": s.pop("feats.1.lk.conv.weight")}), "sparse large kernels"),
    (lambda s: s.update({"feats.1.channe_mixer.0.weight": np.zeros((16, 8, 1, 1), np.float32),
                         "feats.1.channe_mixer.2.weight": np.zeros((8, 16, 1, 1), np.float32)}),
     "no 1x1 and 3x3 convolutions of a channel mixer"),
    (lambda s: s.update({"feats.1.norm.weight": np.ones(8, np.float32)}), "with norm weights"),
    (lambda s: s.update({"to_img.offset.weight": np.zeros((16, 12, 1, 1), np.float32)}), "with a DySample upsampler"),
])
def test_a_plksr_variant_not_converted_is_a_one_line_error(change, message):
    state = random_plksr(paper=True)
    change(state)
    with pytest.raises(ModelError) as e:
        convert_weights(state)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("upsampler", [None, "dynamic"])
def test_a_converted_realplksr_upscales_through_the_command(tmp_path, upsampler):
    state = random_plksr(scale=2, layer_norm=True, dysample=upsampler)
    source = save_zip(tmp_path / "2x-RealPLKSR.pth", {"params_ema": {k: tensor(v) for k, v in state.items()}})
    proc = run("convert", "-i", source, "-o", tmp_path / "models")
    assert "RealPLKSR, 2 blocks, 8 features" in proc.stdout.splitlines()[0]
    assert ("DySample" in proc.stdout.splitlines()[0]) == bool(upsampler)
    image = picture(40, 36)
    Image.fromarray(image).save(tmp_path / "in.png")
    run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-g", "-1", "-n",
        tmp_path / "models" / "2x-RealPLKSR.param")
    with Image.open(tmp_path / "out.png") as im:
        assert im.size == (72, 80)


# --- GroupNorm: statistics of the whole picture, tiled exactly in stages ----------------


def plksr_model(tmp_path, **kwargs):
    return write_model(convert_weights(random_plksr(**kwargs), fp16=False), tmp_path, "plksr")


def two_halves(h: int = 90, w: int = 70) -> np.ndarray:
    """A smooth picture whose halves differ in brightness: tiles of either half alone
    have other statistics than the whole."""
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(0, 1, (h, w, 1)).cumsum(0).cumsum(1) * 0.5 + 128, 0, 255).astype(np.uint8)
    image[:, :w // 2] //= 3
    return image.repeat(3, 2)


def test_a_groupnorm_realplksr_is_staged_block_by_block_up_to_its_pixel_shuffle(tmp_path):
    spec = plksr_model(tmp_path, blocks=3, kernel=7)
    plan = plan_network(spec.param_path.read_bytes(), spec.input_blob, spec.output_blob)
    layers = parse_param(spec.param_path.read_bytes()).layers
    assert [layer.type for layer in layers if layer.tops == (spec.output_blob,)] == ["PixelShuffle"]
    assert plan.head_context == 1
    # feats.0, then one stage per block ending at its GroupNorm, then the last convolution.
    assert [s.norm.layer if s.norm else None for s in plan.stages] == [None, "feats.1.norm", "feats.2.norm",
                                                                      "feats.3.norm", None]
    # A block reaches 2 (channel mixer) + 3 (7x7 kernel) + 1 (attention) pixels.
    assert [s.reach for s in plan.stages] == [1, 6, 6, 6, 1]
    assert all(a.target == b.source for a, b in zip(plan.stages, plan.stages[1:]))


def test_a_layer_norm_realplksr_needs_no_stages(tmp_path):
    spec = plksr_model(tmp_path, layer_norm=True)
    assert plan_network(spec.param_path.read_bytes(), spec.input_blob, spec.output_blob) is None


def test_a_groupnorm_in_another_pattern_plans_no_stages():
    text = ("7767517\n5 5\nInput in 0 1 data\nConvolution c 1 1 data a 0=4 1=3 4=1 5=0 6=108\n"
            "GroupNorm g 1 1 a b 0=2 1=4 2=1e-5 3=0\nConvolution d 1 1 b e 0=12 1=3 4=1 5=0 6=432\n"
            "PixelShuffle p 1 1 e out 0=2\n").encode()
    plan = plan_network(text, "data", "out")
    assert plan is not None and plan.stages == ()  # no residual after the norm: run whole, head apart


def test_normalising_a_map_is_groupnorm_over_all_of_it():
    rng = np.random.default_rng(3)
    values = rng.normal(5, 2, (8, 13, 11)).astype(np.float32)
    added = rng.normal(0, 1, values.shape).astype(np.float32)
    scale, shift = rng.uniform(0.5, 1.5, 8), rng.normal(0, 0.1, 8)
    want = group_norm(values.astype(np.float64), 4, scale, shift) + added
    got = values.copy()
    staged.normalise(got, GroupNorm("n", "x", 4, 1e-5), scale, shift, added)
    assert np.abs(got - want).max() < 1e-5


@pytest.mark.parametrize("tta", [False, True])
def test_groupnorm_realplksr_tiled_is_the_whole_pictures(tmp_path, tta):
    spec = plksr_model(tmp_path, blocks=2, kernel=7)
    image = two_halves()
    with Upscaler(spec, device=-1, tile=400, tta=tta, precision="fp32") as whole, \
            Upscaler(spec, device=-1, tile=32, tta=tta, precision="fp32") as tiled:
        want, got = whole.upscale(image), tiled.upscale(image)
    assert np.abs(got.astype(int) - want).max() <= 1


def test_groupnorm_tiles_without_stages_are_said_to_differ(tmp_path, caplog):
    spec = plksr_model(tmp_path, blocks=2, kernel=7)
    image = two_halves()
    with Upscaler(spec, device=-1, tile=400, precision="fp32") as whole, \
            Upscaler(spec, device=-1, tile=32, exact=False, precision="fp32") as tiled:
        want, got = whole.upscale(image), tiled.upscale(image)
        tiled.upscale(image)
    assert np.abs(got.astype(int) - want).max() > 10  # what the stages avoid
    said = [r.getMessage() for r in caplog.records if "GroupNorm" in r.getMessage()]
    assert len(said) == 1 and "exact tiling was turned off" in said[0]


def test_groupnorm_tiles_blended_into_one_window_are_not_said_to_differ(tmp_path, caplog):
    # Tiles of 32 px blend a 40x40 picture as one window, the whole picture's run: it
    # was said to differ from the whole picture's all the same.
    spec = plksr_model(tmp_path, blocks=2, kernel=7)
    image = two_halves(40, 40)
    with Upscaler(spec, device=-1, tile=400, precision="fp32") as whole, \
            Upscaler(spec, device=-1, tile=32, exact=False, precision="fp32") as tiled:
        assert tiled.runs_whole(40, 40)
        assert np.array_equal(tiled.upscale(image), whole.upscale(image))
        assert not [r for r in caplog.records if "GroupNorm" in r.getMessage()]
        tiled.upscale(two_halves(40, 70))  # blended windows of their own: said
    said = [r.getMessage() for r in caplog.records if "GroupNorm" in r.getMessage()]
    assert len(said) == 1 and "exact tiling was turned off" in said[0]


def test_the_large_kernel_runs_without_sgemm_and_the_model_is_estimated_light(tmp_path):
    spec = plksr_model(tmp_path)
    lines = spec.param_path.read_text().splitlines()
    large = [line for line in lines if ".lk.conv " in line]
    assert len(large) == 2 and all(line.endswith(" 31=32") for line in large)
    assert sum(" 31=" in line for line in lines) == 2  # the other convolutions keep ncnn's choice
    assert spec.cpu_bytes_per_pixel < 16_000  # RRDBNet's 64 kB would shrink its automatic tile for nothing


def test_loading_a_groupnorm_dysample_model_reads_its_weights_into_python_no_second_time(tmp_path):
    # Its GroupNorms' and DySample's weights were found in the whole .bin read again,
    # after the network had read it: twice the weights' size in memory at each load.
    import tracemalloc
    spec = plksr_model(tmp_path, blocks=4, kernel=7, dim=96, dysample="static")
    size = spec.bin_path.stat().st_size
    assert size > 5 << 20
    tracemalloc.start()
    try:
        up = Upscaler(spec, device=-1, precision="fp32")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    with up:
        assert isinstance(up._net, SplitNetwork) and up._net.offsets is not None
    assert peak < size // 4


def test_a_groupnorm_without_affine_weights_is_staged_with_ncnns_defaults(tmp_path):
    # Written by hand: eps left to ncnn's default (0.001) and no scale or shift.
    rng = np.random.default_rng(5)
    w0, w1, w2 = (rng.normal(0, 0.3, shape).astype(np.float32) for shape in ((4, 3, 3, 3), (4, 4, 3, 3), (12, 4, 3, 3)))
    text = ("7767517\n8 9\nInput in 0 1 data\nConvolution c0 1 1 data a 0=4 1=3 4=1 5=0 6=108\n"
            "Split s 1 2 a a0 a1\nConvolution c1 1 1 a0 b 0=4 1=3 4=1 5=0 6=144\n"
            "GroupNorm g 1 1 b n 0=2 1=4 3=0\nBinaryOp add 2 1 n a1 r 0=0\n"
            "Convolution c2 1 1 r e 0=12 1=3 4=1 5=0 6=432\nPixelShuffle p 1 1 e out 0=2\n")
    (tmp_path / "gn.param").write_text(text)
    (tmp_path / "gn.bin").write_bytes(b"".join(bytes(4) + w.tobytes() for w in (w0, w1, w2)))
    plan = plan_network(text.encode(), "data", "out")
    assert [s.norm for s in plan.stages if s.norm] == [GroupNorm("g", "b", 2, 0.001, False)]
    image = two_halves(40, 36)
    with Upscaler(str(tmp_path / "gn.param"), device=-1, tile=400, precision="fp32") as whole, \
            Upscaler(str(tmp_path / "gn.param"), device=-1, tile=32, precision="fp32") as tiled:
        assert np.abs(tiled.upscale(image).astype(int) - whole.upscale(image)).max() <= 1
