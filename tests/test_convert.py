"""ncnn_sr.convert: state dicts of the shipped models' weights, converted, compute what
the shipped models compute; layouts and weights not known are refused in one line."""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ncnn_sr import convert as convert_mod
from ncnn_sr.convert import ConvertedModel, convert_weights, interpolate_weights, name_scale, write_model
from ncnn_sr.engine import Upscaler
from ncnn_sr.errors import FlagNames, InputError, ModelError, SettingError
from ncnn_sr.models import ModelSpec, resolve_model
from ncnn_sr.network import SplitNetwork
from ncnn_sr.param_file import input_alignment, parse_param, weight_ends

_TAG_FP16 = 0x01306B47


def _tensor(data: bytes, offset: int, count: int, flagged: bool) -> np.ndarray:
    if flagged:
        tag = int.from_bytes(data[offset:offset + 4], "little")
        offset += 4
        if tag == _TAG_FP16:
            return np.frombuffer(data, "<f2", count, offset).astype(np.float32)
        assert tag == 0
    return np.frombuffer(data, "<f4", count, offset).copy()


def shipped_tensors(name: str) -> list[tuple[str, list[np.ndarray]]]:
    """Each Convolution's (weight, bias) or PReLU's (slope) of a shipped model, in the
    param's order, read with the walk the model checks use."""
    spec = resolve_model(name)
    data = spec.bin_path.read_bytes()
    graph = parse_param(spec.param_path.read_bytes())
    found, start = [], 0
    for layer, end in weight_ends(graph, data):
        p = layer.params
        if layer.type == "Convolution":
            out, k, count = p[0], p[1], p[6]
            weight = _tensor(data, start, count, flagged=True).reshape(out, count // (out * k * k), k, k)
            bias = _tensor(data, end - 4 * out, out, flagged=False)
            found.append(("Convolution", [weight, bias]))
        elif layer.type == "PReLU":
            found.append(("PReLU", [_tensor(data, start, p[0], flagged=False)]))
        start = end
    assert start == len(data)
    return found


def compact_state(name: str = "realesr-animevideov3-x4") -> dict[str, np.ndarray]:
    state = {}
    for i, (kind, arrays) in enumerate(shipped_tensors(name)):
        state[f"body.{i}.weight"] = arrays[0]
        if kind == "Convolution":
            state[f"body.{i}.bias"] = arrays[1]
    return state


def rrdb_state(name: str = "realesrgan-x4plus") -> dict[str, np.ndarray]:
    convs = [arrays for _, arrays in shipped_tensors(name)]
    blocks = (len(convs) - 6) // 15
    names = ["conv_first"] + [f"body.{i}.rdb{r}.conv{c}" for i in range(blocks) for r in (1, 2, 3)
                              for c in range(1, 6)] + ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]
    assert len(names) == len(convs)
    state = {}
    for key, (weight, bias) in zip(names, convs):
        state[f"{key}.weight"], state[f"{key}.bias"] = weight, bias
    return state


def esrgan_names(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A BasicSR RRDBNet x4 state dict under the original ESRGAN key names."""
    blocks = len({k.split(".")[1] for k in state if k.startswith("body.")})
    fixed = {"conv_first": "model.0", "conv_body": f"model.1.sub.{blocks}", "conv_up1": "model.3",
             "conv_up2": "model.6", "conv_hr": "model.8", "conv_last": "model.10"}
    renamed = {}
    for key, value in state.items():
        stem, end = key.rsplit(".", 1)
        m = re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)", stem)
        new = f"model.1.sub.{m[1]}.RDB{m[2]}.conv{m[3]}.0" if m else fixed[stem]
        renamed[f"{new}.{end}"] = value
    return renamed


def esrgan_one_upsampling(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A BasicSR RRDBNet state dict without conv_up2, under the original ESRGAN names of
    a model with one upsampling convolution (x2 or x3): model.3, then model.5 and model.7."""
    placeholders = {f"conv_up2.{end}": np.zeros(1) for end in ("weight", "bias")}
    moved = {"8": "5", "10": "7"}  # HR and last convolutions, after the one upsampling
    return {re.sub(r"^model\.(8|10)\.", lambda m: f"model.{moved[m[1]]}.", key): value
            for key, value in esrgan_names({**state, **placeholders}).items() if not key.startswith("model.6.")}


def picture(h: int = 20, w: int = 24) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def upscaled(model, image: np.ndarray) -> np.ndarray:
    up = Upscaler(model=model, device="cpu", threads=1)
    try:
        return up.upscale(image)
    finally:
        up.close()


def same_as_shipped(tmp_path, state, shipped: str, name: str = "converted") -> int:
    spec = write_model(convert_weights(state), tmp_path, name)
    image = picture()
    ours, theirs = upscaled(spec, image), upscaled(shipped, image)
    assert ours.shape == theirs.shape
    return int(np.abs(ours.astype(int) - theirs).max())


# --- a numpy reference of the PyTorch modules, for random small models ------------------


def conv3x3(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    c, h, wd = x.shape
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    cols = np.stack([p[:, dy:dy + h, dx:dx + wd] for dy in range(3) for dx in range(3)], 1)  # c, 9, h, w
    return np.einsum("oik,ikhw->ohw", w.reshape(w.shape[0], c, 9), cols) + b[:, None, None]


def lrelu(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, x, 0.2 * x)


def nearest(x: np.ndarray, s: int) -> np.ndarray:
    return x.repeat(s, 1).repeat(s, 2)


def pixel_unshuffle(x: np.ndarray, s: int) -> np.ndarray:
    """torch.nn.functional.pixel_unshuffle: channel c*s*s + dy*s + dx holds pixel (dy, dx)
    of each s x s block."""
    c, h, w = x.shape
    return x.reshape(c, h // s, s, w // s, s).transpose(0, 2, 4, 1, 3).reshape(c * s * s, h // s, w // s)


def pixel_shuffle(x: np.ndarray, s: int) -> np.ndarray:
    c, h, w = x.shape
    return x.reshape(c // (s * s), s, s, h, w).transpose(0, 3, 1, 4, 2).reshape(c // (s * s), h * s, w * s)


def rrdbnet_forward(state: dict, x: np.ndarray, unshuffle: int = 1, ups: int = 2,
                    factors: tuple[int, ...] | None = None) -> np.ndarray:
    """BasicSR's RRDBNet.forward, with Real-ESRGAN's inference padding (reflect, right
    and bottom, to a multiple of the unshuffle factor; the result cropped back). Its
    ``ups`` nearest x2 upsamplings are nearest by each of ``factors`` where given
    (ESRGAN's x3: one by 3)."""
    factors = (2,) * ups if factors is None else factors
    def conv(key, v):
        return conv3x3(v, state[f"{key}.weight"], state[f"{key}.bias"])

    _, h, w = x.shape
    if unshuffle > 1:
        x = np.pad(x, ((0, 0), (0, -h % unshuffle), (0, -w % unshuffle)), mode="reflect")
        x = pixel_unshuffle(x, unshuffle)
    feat = body = conv("conv_first", x)
    blocks = len({k.split(".")[1] for k in state if k.startswith("body.")})
    for i in range(blocks):
        block_in = body
        for r in (1, 2, 3):
            outs = [body]
            for c in range(1, 5):
                outs.append(lrelu(conv(f"body.{i}.rdb{r}.conv{c}", np.concatenate(outs))))
            body = conv(f"body.{i}.rdb{r}.conv5", np.concatenate(outs)) * 0.2 + body
        body = body * 0.2 + block_in
    feat = feat + conv("conv_body", body)
    for u, factor in enumerate(factors, 1):
        feat = lrelu(conv(f"conv_up{u}", nearest(feat, factor)))
    out = conv("conv_last", lrelu(conv("conv_hr", feat)))
    scale = int(np.prod(factors)) // unshuffle
    return out[:, :h * scale, :w * scale]


def compact_forward(state: dict, x: np.ndarray) -> np.ndarray:
    last = max(int(k.split(".")[1]) for k in state)
    out = x
    for i in range(last + 1):
        if i % 2:
            slope = state[f"body.{i}.weight"][:, None, None]
            out = np.where(out >= 0, out, slope * out)
        else:
            out = conv3x3(out, state[f"body.{i}.weight"], state[f"body.{i}.bias"])
    s = int(round((out.shape[0] // 3) ** 0.5))
    return pixel_shuffle(out, s) + nearest(x, s)


def random_rrdb(in_ch: int = 3, blocks: int = 2, feat: int = 8, grow: int = 4, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    shapes = {"conv_first": (feat, in_ch)}
    for i in range(blocks):
        for r in (1, 2, 3):
            for c in range(1, 6):
                shapes[f"body.{i}.rdb{r}.conv{c}"] = (feat if c == 5 else grow, feat + (c - 1) * grow)
    shapes.update({k: (feat, feat) for k in ("conv_body", "conv_up1", "conv_up2", "conv_hr")})
    shapes["conv_last"] = (3, feat)
    state = {}
    for key, (out, inc) in shapes.items():
        state[f"{key}.weight"] = rng.normal(0, (2 / (9 * inc)) ** 0.5, (out, inc, 3, 3)).astype(np.float32)
        state[f"{key}.bias"] = rng.normal(0, 0.05, out).astype(np.float32)
    return state


def random_compact(convs: int = 2, feat: int = 8, upscale: int = 2, seed: int = 2) -> dict:
    rng = np.random.default_rng(seed)
    state = {}
    chans = [(feat, 3)] + [(feat, feat)] * convs + [(3 * upscale * upscale, feat)]
    for n, (out, inc) in enumerate(chans):
        state[f"body.{2 * n}.weight"] = rng.normal(0, (2 / (9 * inc)) ** 0.5, (out, inc, 3, 3)).astype(np.float32)
        state[f"body.{2 * n}.bias"] = rng.normal(0, 0.05, out).astype(np.float32)
        if n < len(chans) - 1:
            state[f"body.{2 * n + 1}.weight"] = rng.uniform(0, 0.5, feat).astype(np.float32)
    return state


def run_ncnn(model: ConvertedModel, x: np.ndarray, tmp_path) -> np.ndarray:
    """The converted network on ncnn's CPU in fp32 throughout."""
    import ncnn

    spec = write_model(model, tmp_path, "net")
    net = ncnn.Net()
    for option in ("use_vulkan_compute", "use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic",
                   "use_bf16_storage", "use_packing_layout"):
        setattr(net.opt, option, False)
    net.opt.num_threads = 1
    assert net.load_param(str(spec.param_path)) == 0 and net.load_model(str(spec.bin_path)) == 0
    x = np.ascontiguousarray(x)
    ex = net.create_extractor()
    ex.input(spec.input_blob, ncnn.Mat(x))
    ret, out = ex.extract(spec.output_blob)
    assert ret == 0
    result = np.array(out).copy()
    del ex, out
    net.clear()
    return result


# --- the shipped models, round trip -------------------------------------------------------


def test_compact_from_shipped_weights_gives_the_shipped_bin_and_output(tmp_path):
    state = compact_state()
    model = convert_weights(state)
    assert (model.scale, model.architecture) == (4, "SRVGGNetCompact, 16 convolutions, 64 features, x4")
    assert model.weights == resolve_model("realesr-animevideov3-x4").bin_path.read_bytes()
    assert same_as_shipped(tmp_path, state, "realesr-animevideov3-x4") == 0


def test_rrdbnet_from_shipped_weights_gives_the_shipped_bin_and_output(tmp_path):
    state = rrdb_state("realesrgan-x4plus")
    model = convert_weights(state)
    assert model.scale == 4
    assert model.architecture == "RRDBNet (Real-ESRGAN names), 23 blocks, 64 features, 32 growth channels, x4"
    assert model.weights == resolve_model("realesrgan-x4plus").bin_path.read_bytes()
    assert same_as_shipped(tmp_path, state, "realesrgan-x4plus") == 0


def test_esrgan_names_convert_to_the_same_network(tmp_path):
    state = rrdb_state("realesrgan-x4plus-anime")
    ours = convert_weights(esrgan_names(state))
    assert ours.architecture.startswith("RRDBNet (ESRGAN names), 6 blocks")
    assert ours.weights == convert_weights(state).weights
    assert same_as_shipped(tmp_path, esrgan_names(state), "realesrgan-x4plus-anime") == 0


def test_rrdbnet_with_a_third_upsampling_is_x8(tmp_path):
    state = random_rrdb()
    rng = np.random.default_rng(8)
    state["conv_up3.weight"] = rng.normal(0, 0.1, state["conv_up2.weight"].shape).astype(np.float32)
    state["conv_up3.bias"] = rng.normal(0, 0.1, state["conv_up2.bias"].shape).astype(np.float32)
    model = convert_weights(state, fp16=False)
    assert model.scale == 8 and model.architecture.endswith(", x8")
    x = rng.random((3, 5, 7), dtype=np.float32)
    np.testing.assert_allclose(run_ncnn(model, x, tmp_path), rrdbnet_forward(state, x, ups=3), atol=1e-4)


def test_esrgan_names_without_upsampling_are_a_1x_model(tmp_path):
    # The community's 1x_ models: model.2 (HR) and model.4 (last) right after the trunk.
    state = random_rrdb()
    del state["conv_up1.weight"], state["conv_up1.bias"], state["conv_up2.weight"], state["conv_up2.bias"]
    renamed = {k.replace("model.8.", "model.2.").replace("model.10.", "model.4."): v
               for k, v in esrgan_names({**state, **{f"conv_up{u}.{e}": np.zeros(1) for u in (1, 2)
                                                     for e in ("weight", "bias")}}).items()
               if not k.startswith(("model.3.", "model.6."))}
    model = convert_weights(renamed, fp16=False)
    assert model.scale == 1 and "Interp" not in model.param
    x = np.random.default_rng(3).random((3, 5, 7), dtype=np.float32)
    np.testing.assert_allclose(run_ncnn(model, x, tmp_path), rrdbnet_forward(state, x, ups=0), atol=1e-4)


def test_esrgan_repository_names_convert_to_the_same_network():
    # RRDB_ESRGAN_x4.pth, as the ESRGAN repository's RRDBNet_arch.py names its weights.
    state = random_rrdb()
    renamed = {}
    for key, value in state.items():
        key = re.sub(r"^body\.(\d+)\.rdb(\d)", r"RRDB_trunk.\1.RDB\2", key)
        for ours, theirs in (("conv_body", "trunk_conv"), ("conv_up", "upconv"), ("conv_hr", "HRconv")):
            key = key.replace(ours, theirs)
        renamed[key] = value
    assert "RRDB_trunk.1.RDB3.conv5.bias" in renamed and "HRconv.weight" in renamed
    ours = convert_weights(renamed)
    assert ours.architecture.startswith("RRDBNet (ESRGAN repository names), 2 blocks")
    assert (ours.param, ours.weights) == (convert_weights(state).param, convert_weights(state).weights)
    del renamed["HRconv.bias"]
    with pytest.raises(ModelError, match=r"key HRconv\.bias is missing"):
        convert_weights(renamed)


def test_esrgan_scale_is_two_to_the_upsampling_convolutions():
    state = esrgan_names(random_rrdb())
    state["model.5.weight"], state["model.5.bias"] = state.pop("model.8.weight"), state.pop("model.8.bias")
    state["model.7.weight"], state["model.7.bias"] = state.pop("model.10.weight"), state.pop("model.10.bias")
    del state["model.6.weight"], state["model.6.bias"]
    model = convert_weights(state)
    assert model.scale == 2 and model.param.count("Interp") == 1


def one_upsampling_state(seed: int = 1) -> tuple[dict, dict]:
    """A random one-block RRDBNet with one upsampling convolution: its BasicSR-named
    state (for rrdbnet_forward) and the same under ESRGAN names."""
    state = random_rrdb(blocks=1, seed=seed)
    del state["conv_up2.weight"], state["conv_up2.bias"]
    return state, esrgan_one_upsampling(state)


def test_esrgan_names_with_one_upsampling_at_scale_3_upsample_by_3_then_convolve(tmp_path):
    # ESRGAN's architecture.py makes x3 as one nearest x3 and a convolution.
    state, renamed = one_upsampling_state()
    model = convert_weights(renamed, fp16=False, scale=3)
    assert model.scale == 3 and model.architecture.endswith(", x3")
    assert [ln.split(None, 6)[6] for ln in model.param.splitlines() if ln.startswith("Interp")] == \
        ["0=1 1=3.000000e+00 2=3.000000e+00"]
    x = np.random.default_rng(5).random((3, 5, 7), dtype=np.float32)
    ours = run_ncnn(model, x, tmp_path)
    assert ours.shape == (3, 15, 21)
    np.testing.assert_allclose(ours, rrdbnet_forward(state, x, factors=(3,)), atol=1e-4)


def test_esrgan_names_with_one_upsampling_at_scale_2_are_the_x2_model(tmp_path):
    state, renamed = one_upsampling_state()
    model = convert_weights(renamed, fp16=False, scale=2)
    assert model.scale == 2 and model.architecture.endswith(", x2")
    x = np.random.default_rng(5).random((3, 5, 7), dtype=np.float32)
    np.testing.assert_allclose(run_ncnn(model, x, tmp_path), rrdbnet_forward(state, x, ups=1), atol=1e-4)


@pytest.mark.parametrize("tile", [0, 32])
def test_x3_esrgan_model_runs_cut_in_the_upscaler_as_its_reference(tmp_path, tile):
    # On the CPU the Upscaler cuts the network before its upsampling and runs the head
    # on pieces; 40x52 takes several, whole (tile 0) or in tiles.
    state, renamed = one_upsampling_state(seed=4)
    spec = write_model(convert_weights(renamed, fp16=False, scale=3), tmp_path, "x3")
    assert spec.scale == 3
    image = picture(40, 52)
    with Upscaler(spec, device="cpu", threads=1, precision="fp32", tile=tile) as up:
        assert isinstance(up._net, SplitNetwork)
        ours = up.upscale(image)
    assert ours.shape == (120, 156, 3)
    expected = to_bytes(rrdbnet_forward(state, as_planes(image), factors=(3,)))
    assert np.abs(ours.astype(int) - expected).max() <= 1


def test_esrgan_names_with_one_upsampling_and_no_scale_are_x2_with_a_warning(caplog):
    _, renamed = one_upsampling_state()
    with caplog.at_level("WARNING", logger="ncnn_sr"):
        model = convert_weights(renamed)
    assert model.scale == 2 and model.architecture.endswith(", x2 (its keys allow x2 or x3)")
    # convert_weights' caller is named its argument alone, where --scale came first.
    assert [r.getMessage() for r in caplog.records] == [
        "RRDBNet (ESRGAN names) with one upsampling convolution is x2 or x3 alike by its keys: converted as x2; "
        "give scale=3 for an x3 model"]


@pytest.mark.parametrize("hint", [2, 3])
def test_the_names_scale_decides_where_the_keys_cannot(caplog, hint):
    _, renamed = one_upsampling_state()
    with caplog.at_level("WARNING", logger="ncnn_sr"):
        model = convert_weights(renamed, scale_hint=hint)
    assert model.scale == hint
    assert model.architecture.endswith(f", x{hint} (as its name says; its keys allow x2 or x3)")
    assert not caplog.records


def test_a_given_scale_overrides_the_names(caplog):
    _, renamed = one_upsampling_state()
    with caplog.at_level("WARNING", logger="ncnn_sr"):
        model = convert_weights(renamed, scale=2, scale_hint=3)
    assert model.scale == 2 and model.architecture.endswith(", x2") and not caplog.records


def test_a_names_scale_that_one_upsampling_cannot_give_is_no_answer(caplog):
    _, renamed = one_upsampling_state()
    with caplog.at_level("WARNING", logger="ncnn_sr"):
        model = convert_weights(renamed, scale_hint=4)
    assert model.scale == 2 and "give scale=3 for an x3 model" in caplog.text


def test_one_upsampling_is_x2_or_x3_only():
    # It said "(--scale, scale=)", the flag and the argument, to a command and a caller alike.
    _, renamed = one_upsampling_state()
    with pytest.raises(ModelError, match=r"^RRDBNet \(ESRGAN names\) with one upsampling convolution is x2 or x3, "
                                         r"not x4 \(scale=4\)$") as caught:
        convert_weights(renamed, scale=4)
    assert caught.value.said(FlagNames()).endswith("not x4 (--scale 4)")


@pytest.mark.parametrize("state, keys_say", [(random_rrdb(), 4), (random_compact(), 2),
                                             (esrgan_names(random_rrdb()), 4)])
def test_a_scale_the_keys_contradict_is_refused_and_a_names_is_ignored(state, keys_say):
    assert convert_weights(state, scale=keys_say).scale == keys_say
    assert convert_weights(state, scale_hint=3).scale == keys_say
    with pytest.raises(ModelError, match=fr"x{keys_say}: its keys say x{keys_say}, not x3 \(scale=3\); "
                                         "a scale is chosen only for ESRGAN names with one upsampling convolution"):
        convert_weights(state, scale=3)


def test_a_scale_reaches_a_network_under_a_trainers_prefix():
    _, renamed = one_upsampling_state()
    model = convert_weights({f"net_g.{k}": v for k, v in renamed.items()}, scale=3)
    assert model.scale == 3 and model.architecture.endswith(", x3, the weights under net_g.")


@pytest.mark.parametrize("bad", [0, -2, True, 2.0, "3"])
def test_a_scale_is_a_whole_number_from_1(bad):
    # A SettingError (a ValueError), as Upscaler.upscale's and model_name_for's bad
    # scale are; it was a ModelError, which no model had caused.
    for keyword in ("scale", "scale_hint"):
        with pytest.raises(SettingError, match=f"^{keyword} must be a whole number from 1, got"):
            convert_weights(random_compact(), **{keyword: bad})


@pytest.mark.parametrize("name, scale", [
    ("3x_Foo", 3), ("2x-Bar_v2", 2), ("4xNomos8kSC", 4), ("2xHFA2kCompact", 2), ("Foo_x3", 3), ("foo.3x", 3),
    ("Foo X3", 3), ("1x_DeJPEG", 1), ("RealESRGAN_x4plus", None), ("3xfoo", None), ("net", None),
    ("3x_Foo_x4", None), ("x264_3x", 3), ("1920x1080", None), ("0x_Foo", None), ("Lexica3x", None)])
def test_a_names_scale_is_a_scale_token_of_its_own_or_a_leading_one(name, scale):
    assert convert_mod.name_scale(name) == scale


def test_fp32_weights_fill_the_bin_tagged_fp32(tmp_path):
    model = convert_weights(compact_state(), fp16=False)
    spec = write_model(model, tmp_path, "fp32")
    assert spec.bin_path.stat().st_size == len(model.weights)
    assert model.weights[:4] == bytes(4)
    assert same_as_shipped(tmp_path, compact_state(), "realesr-animevideov3-x4", "fp32b") <= 1


# --- random small models against the numpy reference -------------------------------------


@pytest.mark.parametrize("in_ch, size", [(3, (6, 7)), (12, (8, 10)), (12, (7, 9)), (48, (8, 12)), (48, (9, 6))])
def test_rrdbnet_computes_the_pytorch_forward(tmp_path, in_ch, size):
    state = random_rrdb(in_ch)
    model = convert_weights(state, fp16=False)
    unshuffle = {3: 1, 12: 2, 48: 4}[in_ch]
    assert model.scale == 4 // unshuffle
    x = np.random.default_rng(3).random((3, *size), dtype=np.float32)
    ours = run_ncnn(model, x, tmp_path)
    expected = rrdbnet_forward(state, x, unshuffle)
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() < 1e-4


@pytest.mark.parametrize("upscale", [1, 2, 3])
def test_compact_computes_the_pytorch_forward(tmp_path, upscale):
    state = random_compact(upscale=upscale)
    model = convert_weights(state, fp16=False)
    assert model.scale == upscale
    x = np.random.default_rng(4).random((3, 5, 7), dtype=np.float32)
    ours = run_ncnn(model, x, tmp_path)
    assert np.abs(ours - compact_forward(state, x)).max() < 1e-4


def test_unshuffled_rrdbnet_runs_in_the_upscaler_on_an_odd_sized_picture(tmp_path):
    state = random_rrdb(12)
    spec = write_model(convert_weights(state), tmp_path, "x2")
    assert spec.scale == 2
    image = picture(19, 21)
    ours = upscaled(spec, image)
    expected = rrdbnet_forward(state, image.transpose(2, 0, 1).astype(np.float32) / 255, 2)
    expected = np.floor(np.clip(expected, 0, 1) * 255 + 0.5).transpose(1, 2, 0)
    assert ours.shape == (38, 42, 3)
    assert np.abs(ours.astype(int) - expected).max() <= 1


def test_unshuffle_layer_is_torch_pixel_unshuffle(tmp_path):
    state = random_rrdb(48)
    model = convert_weights(state, fp16=False)
    # Only the unshuffle: the net cut at conv_first's input, fed a picture of known numbers.
    lines = model.param.splitlines()
    reorg = next(ln for ln in lines if ln.startswith("Reorg"))
    pad = next(ln for ln in lines if ln.startswith("Padding"))
    param = "\n".join(["7767517", "3 3", "Input in 0 1 data",
                       pad.split()[0] + " p 1 1 data padded " + " ".join(pad.split()[6:]),
                       reorg.split()[0] + " r 1 1 padded output " + " ".join(reorg.split()[6:])]) + "\n"
    import ncnn

    (tmp_path / "u.param").write_text(param)
    (tmp_path / "u.bin").write_bytes(b"")
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.load_param(str(tmp_path / "u.param"))
    net.load_model(str(tmp_path / "u.bin"))
    x = np.arange(3 * 8 * 12, dtype=np.float32).reshape(3, 8, 12)
    ex = net.create_extractor()
    ex.input("data", ncnn.Mat(x))
    out = np.array(ex.extract("output")[1]).copy()
    del ex
    net.clear()
    np.testing.assert_array_equal(out, pixel_unshuffle(x, 4))



# --- the phase of pixel-unshuffled models -------------------------------------------------


@pytest.mark.parametrize("in_ch, alignment", [(3, 1), (12, 2), (48, 4)])
def test_alignment_is_the_unshuffle_of_the_input(in_ch, alignment):
    graph = parse_param(convert_weights(random_rrdb(in_ch, blocks=1)).param.encode())
    assert input_alignment(graph) == alignment


@pytest.mark.parametrize("name", ["realesrgan-x4plus", "realesrgan-x4plus-anime", "realesr-animevideov3-x2",
                                  "realesr-animevideov3-x3", "realesr-animevideov3-x4"])
def test_shipped_models_have_no_alignment(name):
    assert input_alignment(parse_param(resolve_model(name).param_path.read_bytes())) == 1


def test_a_spec_carries_its_alignment_also_made_by_hand(tmp_path):
    spec = write_model(convert_weights(random_rrdb(in_ch=48, blocks=1)), tmp_path, "x1")
    assert spec.alignment == 4 and resolve_model(spec.param_path).alignment == 4
    by_hand = ModelSpec("x1", spec.param_path, spec.bin_path, 1, "data", "output", 10, False, "hand")
    assert by_hand.alignment == 1 and resolve_model(by_hand).alignment == 4
    with Upscaler(by_hand, device="cpu") as upscaler:
        assert upscaler.alignment == 4


def test_compact_models_have_no_alignment():
    assert input_alignment(parse_param(convert_weights(random_compact()).param.encode())) == 1


def test_an_unshuffle_after_a_convolution_is_no_alignment():
    # Only the input's own pixels in blocks set the phase: a Reorg further on (after a
    # layer that mixes neighbours) is not looked for.
    param = "\n".join(["7767517", "3 3", "Input in 0 1 data", "Convolution c 1 1 data x 0=3 1=3 4=1 6=81",
                       "Reorg r 1 1 x output 0=2 1=0"]) + "\n"
    assert input_alignment(parse_param(param.encode())) == 1


def test_padding_at_the_top_or_left_is_no_alignment():
    param = "\n".join(["7767517", "3 3", "Input in 0 1 data", "Padding p 1 1 data x 0=1 1=1 2=0 3=1 4=2",
                       "Reorg r 1 1 x output 0=2 1=0"]) + "\n"
    assert input_alignment(parse_param(param.encode())) == 1



def to_bytes(planes: np.ndarray) -> np.ndarray:
    """C×H×W float output as the Upscaler quantizes it, H×W×C."""
    return np.floor(np.clip(planes, 0, 1) * 255 + 0.5).transpose(1, 2, 0)


def as_planes(image: np.ndarray) -> np.ndarray:
    return image.transpose(2, 0, 1).astype(np.float32) / 255


def unshuffled_upscale(tmp_path, in_ch: int, image: np.ndarray, **options) -> tuple[dict, int, np.ndarray]:
    """A random one-block RRDBNet that unshuffles by 2 (``in_ch`` 12) or 4 (48), run
    in fp32 on the CPU: its state, its unshuffle factor and ``image`` upscaled."""
    state = random_rrdb(in_ch, blocks=1)
    spec = write_model(convert_weights(state, fp16=False), tmp_path, "unshuffled", overwrite=True)
    with Upscaler(spec, device="cpu", threads=1, precision="fp32", **options) as up:
        return state, {12: 2, 48: 4}[in_ch], up.upscale(image)


# Tiled against whole, the unshuffled models' windows at the picture's phase differ
# from the whole run by one 8-bit step at most: windows of other sizes take other ncnn
# kernel paths, whose float sums differ in the last bits. Off phase, by up to 255.
# The reference rule's context (80 px, rounded to whole blocks) spans the tiny
# models' reach (~40 px at x2, ~76 px at x1: 17 convolutions at the unshuffled size);
# with 10 px it truncates them, which no phase mends.
@pytest.mark.parametrize("tiling", [{}, {"tile_pad": 80}, {"tta": True}], ids=["seamless", "reference", "tta"])
@pytest.mark.parametrize("tile", [33, 35, 41])
@pytest.mark.parametrize("in_ch", [12, 48])
def test_unshuffled_rrdbnet_tiled_is_its_whole_picture(tmp_path, in_ch, tile, tiling):
    image = picture(97, 75)
    whole = unshuffled_upscale(tmp_path, in_ch, image, **tiling)[2].astype(int)
    tiled = unshuffled_upscale(tmp_path, in_ch, image, tile=tile, **tiling)[2]
    assert np.abs(tiled - whole).max() <= 1


@pytest.mark.parametrize("in_ch, tile_pad, border", [(12, 5, 6), (48, 10, 12)])
def test_unshuffled_rrdbnet_whole_with_the_reference_rule_runs_at_the_pictures_phase(tmp_path, in_ch, tile_pad,
                                                                                       border):
    # The reference rule mirrors the picture by tile_pad, rounded up to whole blocks,
    # so that the picture's top-left corner starts a block, as in Real-ESRGAN's own
    # inference.
    image = picture(19, 21)
    state, s, ours = unshuffled_upscale(tmp_path, in_ch, image, tile_pad=tile_pad)
    mirrored = np.pad(as_planes(image), ((0, 0), (border, border), (border, border)), mode="reflect")
    expected = to_bytes(rrdbnet_forward(state, mirrored, s))[border * 4 // s:(border + 19) * 4 // s,
                                                             border * 4 // s:(border + 21) * 4 // s]
    assert np.abs(ours.astype(int) - expected).max() <= 1


@pytest.mark.parametrize("in_ch", [12, 48])
def test_unshuffled_rrdbnet_tta_flips_the_pictures_own_blocks(tmp_path, in_ch):
    # Each symmetry runs on the picture reflected at its bottom and right to whole
    # blocks, so that a flipped or transposed side of odd length keeps the blocks the
    # plain run has.
    image = picture(19, 21)
    state, s, ours = unshuffled_upscale(tmp_path, in_ch, image, tta=True)
    x = np.pad(as_planes(image), ((0, 0), (0, -19 % s), (0, -21 % s)), mode="reflect")
    total = 0
    for transpose in (False, True):
        for flips in ((), (1,), (2,), (1, 2)):
            turned = np.flip(x.transpose(0, 2, 1) if transpose else x, flips)
            back = np.flip(rrdbnet_forward(state, turned, s), flips)
            total = total + (back.transpose(0, 2, 1) if transpose else back)
    expected = to_bytes(total / 8)[:19 * 4 // s, :21 * 4 // s]
    assert np.abs(ours.astype(int) - expected).max() <= 1


# --- what is refused ----------------------------------------------------------------------


def test_unknown_architecture_is_named_with_its_keys():
    with pytest.raises(ModelError, match=r"an architecture not known here \(keys such as a\.weight, b\.bias\)"):
        convert_weights({"a.weight": np.zeros((1, 1, 3, 3)), "b.bias": np.zeros(1)})


def test_an_unknown_architecture_with_attentions_qkv_is_said_to_be_a_transformer():
    # found by a walk of downloaded-model forms: a SwinIR's refusal named its first keys
    # in order (conv_after_body..., conv_first...), which tell no one what it is.
    weights = {"conv_first.weight": np.zeros((8, 3, 3, 3)), "conv_after_body.weight": np.zeros((8, 8, 3, 3)),
               "layers.0.residual_group.blocks.0.attn.qkv.weight": np.zeros((24, 8))}
    with pytest.raises(ModelError, match=r"^an architecture not known here, a transformer \(its attention's qkv "
                                         r"weights, as SwinIR, HAT and DAT have\) \(keys such as "
                                         r"layers\.0\.residual_group\.blocks\.0\.attn\.qkv\.weight, "
                                         r"conv_after_body\.weight, conv_first\.weight\): RRDBNet"):
        convert_weights(weights)


def test_the_refusal_of_an_unknown_architecture_names_every_family_converted():
    # PLKSR, the paper's own, is converted but went unnamed in the list.
    with pytest.raises(ModelError, match=r": RRDBNet \(Real-ESRGAN, ESRGAN\), SRVGGNetCompact with PReLU, SPAN, "
                                         r"RealPLKSR and PLKSR can be converted$"):
        convert_weights({"a.weight": np.zeros((1, 1, 3, 3))})


@pytest.mark.parametrize("prefix", ["generator.", "model.", "net_g.module."])
def test_a_network_under_a_trainers_prefix_converts_as_itself(prefix):
    # Lightning's state_dict names the weights under the module's attribute, beside
    # a discriminator's; "model." is also how ESRGAN names its own weights.
    for state in (random_rrdb(), esrgan_names(random_rrdb()), random_compact()):
        plain = convert_weights(state)
        wrapped = {**{prefix + k: v for k, v in state.items()}, "discriminator.conv0_0.weight": np.ones((4, 3, 3, 3))}
        model = convert_weights(wrapped)
        assert (model.param, model.weights) == (plain.param, plain.weights)
        assert model.architecture == f"{plain.architecture}, the weights under {prefix}"


def test_of_two_networks_under_prefixes_the_ema_one_is_taken_else_none():
    first, second = random_compact(), random_compact(seed=5)
    model = convert_weights({**{f"net_g.{k}": v for k, v in first.items()},
                             **{f"net_g_ema.{k}": v for k, v in second.items()}})
    assert model.weights == convert_weights(second).weights
    with pytest.raises(ModelError, match=r"^the weights hold several networks, under a\., b\.: save the one"):
        convert_weights({**{f"a.{k}": v for k, v in first.items()}, **{f"b.{k}": v for k, v in second.items()}})


def test_missing_key_is_named():
    state = random_rrdb()
    del state["body.1.rdb2.conv3.bias"]
    with pytest.raises(ModelError, match=r"key body\.1\.rdb2\.conv3\.bias is missing"):
        convert_weights(state)


def test_missing_key_is_named_as_the_esrgan_dict_names_it():
    state = esrgan_names(random_rrdb())
    del state["model.1.sub.0.RDB1.conv2.0.weight"]
    with pytest.raises(ModelError, match=r"key model\.1\.sub\.0\.RDB1\.conv2\.0\.weight is missing"):
        convert_weights(state)


def test_key_to_spare_is_named():
    state = random_rrdb()
    state["conv_up4.weight"] = np.zeros((8, 8, 3, 3), np.float32)
    with pytest.raises(ModelError, match=r"keys not known for it \(conv_up4\.weight\)"):
        convert_weights(state)
    state["conv_up3.weight"] = state.pop("conv_up4.weight")  # x8 (conv_up3) needs its bias too
    with pytest.raises(ModelError, match=r"x8: key conv_up3\.bias is missing"):
        convert_weights(state)


def test_wrong_shape_is_named():
    state = random_rrdb()
    state["conv_hr.weight"] = np.zeros((8, 7, 3, 3), np.float32)
    with pytest.raises(ModelError, match=r"conv_hr\.weight has shape \(8, 7, 3, 3\), expected \(8, 8, 3, 3\)"):
        convert_weights(state)


def test_first_convolution_of_another_channel_count_is_refused():
    state = random_rrdb(in_ch=4)
    with pytest.raises(ModelError, match="conv_first takes 4 channels; an RGB model takes 3, 12 or 48"):
        convert_weights(state)


def test_a_grayscale_esrgan_model_is_refused_by_its_own_keys_name():
    # found by a walk of downloaded-model forms: "conv_first takes 1 channels", of a
    # file whose first convolution is model.0
    with pytest.raises(ModelError, match=r": model\.0 takes 1 channel; an RGB model takes 3, 12 or 48$"):
        convert_weights(esrgan_names(random_rrdb(in_ch=1)))


def test_non_finite_weights_are_refused():
    state = random_compact()
    state["body.2.weight"][0, 0, 0, 0] = np.nan
    with pytest.raises(ModelError, match=r"body\.2\.weight holds NaN or infinite values"):
        convert_weights(state)


def test_weights_too_large_for_fp16_are_refused_unless_fp32():
    state = random_compact()
    state["body.2.weight"][0, 0, 0, 0] = 1e6
    with pytest.raises(ModelError, match=r"too large for fp16: keep float32 weights \(fp16=False\)$"):
        convert_weights(state)
    assert convert_weights(state, fp16=False).scale == 2


def test_compact_without_prelu_weights_is_refused():
    state = {k: v for k, v in random_compact().items() if v.ndim != 1 or k.endswith(".bias")}
    assert "body.1.weight" not in state and "body.2.weight" in state
    with pytest.raises(ModelError, match="without PReLU weights .* cannot be told apart"):
        convert_weights(state)


def test_errors_are_one_line():
    for state in ({}, {"x": np.zeros(1)}, {"conv_first.weight": np.zeros(3)}):
        with pytest.raises(ModelError) as e:
            convert_weights(state)
        assert "\n" not in str(e.value)


# --- writing ------------------------------------------------------------------------------


def test_write_model_gives_a_checked_custom_spec(tmp_path):
    model = convert_weights(random_compact())
    spec = write_model(model, tmp_path, "mine")
    assert spec.param_path == tmp_path / "mine.param" and spec.bin_path == tmp_path / "mine.bin"
    assert (spec.input_blob, spec.output_blob, spec.scale, spec.verified) == ("data", "output", 2, False)
    assert spec.param_path.read_text() == model.param
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.bin", "mine.param"]


@pytest.mark.parametrize("name", ["", "a/b", ".hidden", "m.param", "a\nb", "tab\there", "nul\0"])
def test_write_model_refuses_a_name_that_is_not_a_file_name(tmp_path, name):
    with pytest.raises(ModelError, match="file name without folder or suffix"):
        write_model(convert_weights(random_compact()), tmp_path, name)


def test_a_folder_in_the_models_place_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "m.param").mkdir()
    with pytest.raises(ModelError, match="m.param is a folder"):
        write_model(convert_weights(random_compact()), tmp_path, "m")
    assert [p.name for p in tmp_path.iterdir()] == ["m.param"]


def test_write_model_takes_its_new_bin_back_when_the_param_cannot_take_its_name(tmp_path, monkeypatch):
    rename = convert_mod._rename

    def failing(source, target):
        if target.suffix == ".param":
            raise InputError(f"cannot write {target}: No space left on device")
        rename(source, target)

    monkeypatch.setattr(convert_mod, "_rename", failing)
    with pytest.raises(InputError, match="m.param"):
        write_model(convert_weights(random_compact()), tmp_path, "m")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("failure", [InputError("cannot write: No space left on device"), KeyboardInterrupt()],
                         ids=["error", "ctrl-c"])
@pytest.mark.parametrize("failing", ["m.bin", "m.param"])
def test_a_replacement_that_fails_midway_leaves_the_old_pair_whole(tmp_path, monkeypatch, failing, failure):
    # The new param's rename failing just after the new bin's once left the new bin
    # beside the old param.
    write_model(convert_weights(random_compact()), tmp_path, "m")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    rename, failed = convert_mod._rename, []

    def failing_once(source, target):
        if target.name == failing and not failed:
            failed.append(source.name)
            raise failure
        rename(source, target)

    monkeypatch.setattr(convert_mod, "_rename", failing_once)
    with pytest.raises(type(failure)):
        write_model(convert_weights(random_compact(seed=7)), tmp_path, "m", overwrite=True)
    assert failed and ".part." in failed[0]  # the new file's rename, after the old pair stepped aside
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_replacement_leaves_the_new_pair_and_nothing_else(tmp_path):
    write_model(convert_weights(random_compact()), tmp_path, "m")
    new = convert_weights(random_compact(seed=7))
    write_model(new, tmp_path, "m", overwrite=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {"m.param": new.param.encode(),
                                                                    "m.bin": new.weights}


def test_a_lone_bin_is_replaced_and_put_back_alike(tmp_path, monkeypatch):
    (tmp_path / "m.bin").write_bytes(b"old")
    rename = convert_mod._rename

    def failing(source, target):
        if target.name == "m.param":
            raise InputError("cannot write m.param")
        rename(source, target)

    monkeypatch.setattr(convert_mod, "_rename", failing)
    with pytest.raises(InputError):
        write_model(convert_weights(random_compact()), tmp_path, "m", overwrite=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {"m.bin": b"old"}
    monkeypatch.setattr(convert_mod, "_rename", rename)
    write_model(convert_weights(random_compact()), tmp_path, "m", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.param"]


@pytest.mark.parametrize("protected", ["m.param", "m.bin"])
def test_a_write_protected_model_file_is_not_replaced_even_with_overwrite(protected):
    # overwrite=True (--force) renamed over a file its owner had made read-only
    # (chmod a-w), where an output picture is refused.
    import shutil
    import tempfile

    from test_images import as_another_user

    folder = Path(tempfile.mkdtemp())  # not tmp_path, which another user cannot enter
    try:
        folder.chmod(0o777)
        with as_another_user():
            write_model(convert_weights(random_compact()), folder, "m")
            (folder / protected).chmod(0o444)
            before = {p.name: p.read_bytes() for p in folder.iterdir()}
            with pytest.raises(InputError) as refused:
                write_model(convert_weights(random_compact(seed=7)), folder, "m", overwrite=True)
        assert str(refused.value) == f"cannot replace {folder / protected}: it is write-protected (read-only): " \
                                     "make it writable to replace it"
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    finally:
        shutil.rmtree(folder)


def test_a_replaced_model_keeps_the_mode_of_the_files_it_replaces(tmp_path):
    # A pair its owner had made private (chmod 600) came back readable by all (644).
    write_model(convert_weights(random_compact()), tmp_path, "m")
    (tmp_path / "m.param").chmod(0o600)
    (tmp_path / "m.bin").chmod(0o640)
    write_model(convert_weights(random_compact(seed=7)), tmp_path, "m", overwrite=True)
    assert (tmp_path / "m.bin").read_bytes() == convert_weights(random_compact(seed=7)).weights
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {"m.param": 0o600, "m.bin": 0o640}


# --- network interpolation ----------------------------------------------------------------


def test_interpolation_mixes_each_weight_and_keeps_the_ends():
    first, second = random_compact(seed=3), random_compact(seed=4)
    mixed = interpolate_weights(first, second, 0.25)
    for key in first:
        assert np.allclose(mixed[key], 0.25 * first[key] + 0.75 * second[key], rtol=0, atol=1e-7)
    assert all(np.array_equal(interpolate_weights(first, second, 1)[k], first[k]) for k in first)
    assert all(np.array_equal(interpolate_weights(first, second, 0)[k], second[k]) for k in first)


def test_interpolation_takes_integer_entries_from_the_first():
    first, second = {"n": np.array(3), "w": np.ones(2, np.float32)}, {"n": np.array(9), "w": np.zeros(2, np.float32)}
    mixed = interpolate_weights(first, second, 0.5)
    assert mixed["n"] == 3 and np.array_equal(mixed["w"], [0.5, 0.5])


def test_interpolation_of_two_different_networks_is_refused():
    with pytest.raises(ModelError, match=r"weight body.0.weight is 8x3x3x3 in one model and 4x3x3x3 in the other"):
        interpolate_weights(random_compact(), random_compact(feat=4), 0.5)
    with pytest.raises(ModelError, match=r"hold different weights \(body.7.weight, body.8.bias, body.8.weight\): only two trainings"):
        interpolate_weights(random_compact(convs=3), random_compact(convs=2), 0.5)


@pytest.mark.parametrize("first, second, said", [
    (None, None, "the weights must be a mapping of names to arrays, got None"),
    ({"a": np.ones(2)}, [1], "the weights must be a mapping of names to arrays, got [1]"),
    ({1: np.ones(2)}, {"a": np.ones(2)}, "the weights' keys must all be strings"),
    ({"a": [1, [2]]}, {"a": [1, [2]]}, "weight a is not an array of numbers"),
    ({"a": "text"}, {"a": "text"}, "weight a is not an array of numbers"),
])
def test_interpolation_of_what_is_no_state_dict_is_refused_in_one_line(first, second, said):
    # found by a bug hunt: bare AttributeError or ValueError, or a string "mixed"
    with pytest.raises(ModelError) as refused:
        interpolate_weights(first, second, 0.5)
    assert str(refused.value) == said


@pytest.mark.parametrize("weight", [-0.1, 1.5, float("nan"), "0.5", True, None])
def test_interpolation_weight_is_from_0_to_1(weight):
    # A SettingError (a ValueError), as mix_models' for the same weight; it was a ModelError.
    with pytest.raises(SettingError, match="^the interpolation weight must be a number from 0 to 1, got"):
        interpolate_weights(random_compact(), random_compact(), weight)


def test_a_model_that_fails_its_trial_replaces_nothing(tmp_path):
    write_model(convert_weights(random_compact()), tmp_path, "m")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    wrong = replace(convert_weights(random_compact(seed=7)), scale=3)  # the network gives x2
    with pytest.raises(ModelError, match="the converted model gives x2, where its architecture says x3"):
        write_model(wrong, tmp_path, "m", overwrite=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_model_that_fails_its_trial_is_named_by_its_name_not_its_temporary_one(tmp_path):
    # The error named the hidden pair it was tried as: "model .m.d104f985.part: turns ...".
    halving = "7767517\n2 2\nInput data 0 1 data\nInterp up 1 1 data output 0=2 1=0.5 2=0.5\n"
    wrong = replace(convert_weights(random_compact()), param=halving, weights=b"")
    with pytest.raises(ModelError) as refused:
        write_model(wrong, tmp_path, "m")
    assert str(refused.value) == "the converted model does not run: model m: turns a 32x32 RGB picture into " \
                                 "16x16x3: not a whole-number RGB upscaler"
    assert list(tmp_path.iterdir()) == []


def test_a_model_whose_trial_gives_nan_names_no_hidden_file(tmp_path):
    # The trial's error names a custom model's files: here the hidden pair it was tried as.
    import struct

    conv = ("7767517\n3 3\nInput data 0 1 data\nConvolution conv 1 1 data c 0=3 1=1 5=1 6=9\n"
            "Interp up 1 1 c output 0=1 1=2.0 2=2.0\n")
    nan = struct.pack("<I9f3f", 0, *[float("nan")] * 9, 0, 0, 0)
    wrong = replace(convert_weights(random_compact()), param=conv, weights=nan, scale=2)
    with pytest.raises(ModelError) as refused:
        write_model(wrong, tmp_path, "m")
    assert str(refused.value) == "the converted model does not run: model m: gave NaN or infinite values for a black " \
                                 "32x32 test input on CPU: its weights are broken, or not those of its .param"
    assert list(tmp_path.iterdir()) == []


def test_an_existing_model_is_replaced_only_when_asked(tmp_path):
    write_model(convert_weights(random_compact()), tmp_path, "m")
    with pytest.raises(ModelError, match=r"m.param exists: replace it \(overwrite=True\), or give another name$"):
        write_model(convert_weights(random_compact(seed=7)), tmp_path, "m")
    write_model(convert_weights(random_compact(seed=7)), tmp_path, "m", overwrite=True)
    assert (tmp_path / "m.bin").read_bytes() == convert_weights(random_compact(seed=7)).weights


@pytest.mark.parametrize("in_ch,h,w", [(48, 6, 1), (48, 1, 7), (48, 2, 3), (12, 1, 5)])
def test_an_unshuffled_rrdbnet_gives_one_output_for_a_picture_narrower_than_its_blocks(tmp_path, in_ch, h, w):
    # The network reflects a part block to a whole one itself, reading past a side
    # narrower than that: each run then read other memory.
    image = picture(h, w)
    state, factor, first = unshuffled_upscale(tmp_path, in_ch, image)
    runs = [unshuffled_upscale(tmp_path, in_ch, image)[2] for _ in range(3)]
    assert all(np.array_equal(first, run) for run in runs)
    expected = np.clip(rrdbnet_forward(state, as_planes(image), factor), 0, 1)
    assert np.abs(as_planes(first) - expected).max() <= 1 / 255 + 1e-6


def test_another_network_with_a_conv_first_is_not_taken_for_an_rrdbnet():
    swinir = {"conv_first.weight": np.zeros((60, 3, 3, 3), np.float32), "conv_first.bias": np.zeros(60, np.float32),
              "layers.0.residual_group.blocks.0.attn.qkv.weight": np.zeros((180, 60), np.float32)}
    with pytest.raises(ModelError, match=r"^an architecture not known here, a transformer "):
        convert_weights(swinir)


def test_a_key_with_a_line_break_is_shown_on_one_line():
    # The keys come from the user's file: one holding "\n" split the message.
    weights = random_compact()
    weights["body.0.weight\n"] = weights.pop("body.0.weight")
    with pytest.raises(ModelError) as e:
        convert_weights(weights)
    assert "\n" not in str(e.value) and "body.0.weight\\n" in str(e.value)
    with pytest.raises(ModelError) as e:
        interpolate_weights(weights, {**weights, "x\ny": weights["body.0.bias"]}, 0.5)
    assert "\n" not in str(e.value) and "x\\ny" in str(e.value)


def test_numpy_numbers_are_taken_and_a_non_bool_fp16_or_a_non_string_name_refused(tmp_path):
    state = random_compact()
    assert convert_weights(state, scale=np.int64(2)).scale == 2
    assert len(interpolate_weights(state, state, np.float32(0.5))) == len(state)
    with pytest.raises(SettingError, match="fp16 must be True or False, got 'no'"):
        convert_weights(state, fp16="no")  # truthy: fp16 stored where fp32 was asked for
    with pytest.raises(ModelError, match="a model's name must be a string"):
        name_scale(None)


@pytest.mark.parametrize("flag", ["overwrite", "trial"])
def test_write_model_refuses_a_flag_that_is_no_bool_and_leaves_the_pair_there(flag, tmp_path):
    # found by a check of the library's faults: overwrite="no", being true, replaced
    # the model there, as fp16="no" stored fp16 before convert_weights refused it
    old = write_model(convert_weights(random_compact(seed=1)), tmp_path, "m", trial=False)
    before = old.param_path.read_bytes(), old.bin_path.read_bytes()
    with pytest.raises(SettingError) as refused:
        write_model(convert_weights(random_compact(seed=2)), tmp_path, "m", **{flag: "no"})
    assert str(refused.value) == f"{flag} must be True or False, got 'no'"
    assert (old.param_path.read_bytes(), old.bin_path.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.param"]


def test_writing_into_a_missing_folder_names_the_model_not_a_temporary_file(tmp_path):
    with pytest.raises(InputError) as e:
        write_model(convert_weights(random_compact()), tmp_path / "missing", "x")
    assert str(e.value) == f"cannot write {tmp_path / 'missing' / 'x.param'}: there is no folder {tmp_path / 'missing'}"


def test_a_full_disk_is_said_of_the_models_own_file_not_a_temporary_one(tmp_path, monkeypatch):
    import errno

    from ncnn_sr import files as files_mod

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files_mod.os, "fchmod", full)  # after the bytes: as a write that found no room
    with pytest.raises(InputError) as e:
        write_model(convert_weights(random_compact()), tmp_path, "m")
    assert str(e.value) == f"cannot write {tmp_path / 'm.bin'}: No space left on device"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["realesrgan-x4plus ", " mine"])
def test_a_name_with_spaces_at_an_end_is_refused(tmp_path, name):
    # "realesrgan-x4plus " was listed just as the catalog's model is.
    with pytest.raises(ModelError, match="a model's name must be a file name"):
        write_model(convert_weights(random_compact()), tmp_path, name)


def test_one_network_under_two_trainers_prefixes_interpolates(tmp_path):
    a, b = random_compact(seed=1), random_compact(seed=2)
    mixed = interpolate_weights({f"params_ema.{k}": v for k, v in a.items()}, {f"model.{k}": v for k, v in b.items()},
                                0.25)
    assert mixed.keys() == a.keys()
    assert np.allclose(mixed["body.0.weight"], 0.25 * a["body.0.weight"] + 0.75 * b["body.0.weight"])


def test_a_catalog_familys_name_is_refused_in_the_librarys_words(tmp_path):
    # It said "-n realesr-animevideov3 would pick one", a flag a library caller has not.
    with pytest.raises(ModelError) as caught:
        convert_mod.check_target(tmp_path, "realesr-animevideov3")
    assert str(caught.value) == ("realesr-animevideov3 names the catalog's realesr-animevideov3 models "
                                 "(model_name_for('realesr-animevideov3', scale) would pick one of them): give the "
                                 "converted one another name")
