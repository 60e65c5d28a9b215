"""Cutting a network into parts from its .param file: RRDBNet's head (from the first
upsampling on) and its trunk's stages, with the context each part needs."""
import random

import numpy as np
import pytest

from conftest import picture
from ncnn_sr import Upscaler, resolve_model
from ncnn_sr import engine as engine_mod
from ncnn_sr import netsplit as netsplit_mod
from ncnn_sr import network as network_mod
from ncnn_sr.param_file import parse_param
from ncnn_sr.netsplit import MIN_STAGE_REACH, plan_network


def plan_of(name):
    spec = resolve_model(name)
    return spec, plan_network(spec.param_path.read_bytes(), spec.input_blob, spec.output_blob)


@pytest.mark.parametrize("name,blocks", [("realesrgan-x4plus", 23), ("realesrgan-x4plus-anime", 6)])
def test_rrdbnet_is_cut_before_its_upsampling_and_staged_block_by_block(name, blocks):
    spec, plan = plan_of(name)
    layers = parse_param(spec.param_path.read_bytes()).layers
    first_up = next(i for i, layer in enumerate(layers) if layer.type == "Interp")
    assert plan.cut_blob == layers[first_up].bottoms[0] and 2 <= plan.head_context <= 4
    # One stage per residual-in-residual block, chained from the picture to the cut.
    assert len(plan.stages) == blocks
    assert plan.stages[0].source == spec.input_blob and plan.stages[-1].target == plan.cut_blob
    assert all(a.target == b.source for a, b in zip(plan.stages, plan.stages[1:]))
    assert all(s.channels == 64 and s.reach >= MIN_STAGE_REACH for s in plan.stages)
    # Every 3x3 convolution before the cut reaches one pixel, counted once.
    convolutions = sum(1 for layer in layers[:first_up] if layer.type == "Convolution")
    assert sum(s.reach for s in plan.stages) == convolutions


def test_planning_looks_at_each_layers_reach_once(monkeypatch):
    # Each stage's candidates were counted from the first layer: 26000 looks for
    # realesrgan-x4plus's 1000 layers, 0.15 s of every start with the default model.
    spec = resolve_model("realesrgan-x4plus")
    layers = parse_param(spec.param_path.read_bytes()).layers
    looks = []
    own_reach = netsplit_mod._own_reach
    monkeypatch.setattr(netsplit_mod, "_own_reach", lambda layer: looks.append(1) or own_reach(layer))
    plan = plan_network(spec.param_path.read_bytes(), spec.input_blob, spec.output_blob)
    assert len(plan.stages) == 23 and len(looks) <= 2 * len(layers)


def _reach_counted_from_the_first_layer(layers, blob, start, input_blob):
    reach = {input_blob: 0}
    for layer in layers:
        own = netsplit_mod._own_reach(layer)
        below = [reach.get(b) for b in layer.bottoms]
        value = None if own is None or not below or None in below else own + max(below)
        if layer.type == "Input":
            value = 0
        for t in layer.tops:
            reach[t] = 0 if t == start else value
        if blob in layer.tops:
            return reach[blob]
    return None


@pytest.mark.parametrize("name", ["realesrgan-x4plus-anime", "realesr-animevideov3-x2"])
def test_each_blobs_reach_is_the_one_a_pass_from_the_first_layer_gives_in_any_order(name):
    # Reaches are kept for each start and counted on from where they were asked last:
    # whatever is asked, and in whatever order, the answers are a fresh pass's.
    spec = resolve_model(name)
    layers = parse_param(spec.param_path.read_bytes()).layers
    blobs = list(dict.fromkeys(t for layer in layers for t in (*layer.bottoms, *layer.tops))) + ["none"]
    pairs = [(blob, start) for start in blobs[::len(blobs) // 8] for blob in blobs[::3]]
    random.Random(0).shuffle(pairs)
    reach = netsplit_mod._Reaches(layers, spec.input_blob)
    expected = [_reach_counted_from_the_first_layer(layers, blob, start, spec.input_blob) for blob, start in pairs]
    assert [reach(blob, start) for blob, start in pairs] == expected
    assert {r for r in expected if r is not None} != {0}  # reaches that differ were compared


def test_a_network_without_an_upsampling_layer_is_not_cut():
    _, plan = plan_of("realesr-animevideov3-x4")  # ends in PixelShuffle
    assert plan is None


def param(*rows):
    return ("7767517\n%d %d\n" % (len(rows), 2 * len(rows)) + "\n".join(rows) + "\n").encode()


def test_a_head_that_reaches_back_past_the_cut_is_not_cut():
    text = param("Input in 0 1 data", "Split sp 1 2 data a b", "Interp up 1 1 a up 0=1 1=2.0 2=2.0",
                 "Interp up2 1 1 b up2 0=1 1=2.0 2=2.0", "BinaryOp add 2 1 up up2 out")
    assert plan_network(text, "data", "out") is None


def test_a_head_with_a_stride_or_an_unknown_layer_is_not_cut():
    strided = param("Input in 0 1 data", "Interp up 1 1 data up 0=1 1=2.0 2=2.0",
                    "Convolution c 1 1 up out 0=3 1=3 3=2 5=0 6=0")
    unknown = param("Input in 0 1 data", "Interp up 1 1 data up 0=1 1=2.0 2=2.0", "Softmax s 1 1 up out")
    assert plan_network(strided, "data", "out") is None
    assert plan_network(unknown, "data", "out") is None


@pytest.mark.parametrize("layer", ["Interp down 1 1 data t 0=2 1=0.5 2=0.5",
                                   "Convolution down 1 1 data t 0=3 1=3 3=2 4=1 5=0 6=0",
                                   "Pooling down 1 1 data t 0=1 1=2 2=2"])
def test_a_trunk_that_changes_the_scale_is_not_cut(layer, tmp_path):
    # The head's pieces are boxes of the picture (over the unshuffle's stride): a
    # trunk at half its scale took them past the map's edge, a ValueError's
    # traceback from the command.
    text = param("Input in 0 1 data", layer, "Interp up 1 1 t out 0=1 1=4.0 2=4.0")
    assert plan_network(text, "data", "out") is None
    if layer.startswith("Interp"):
        (tmp_path / "half.param").write_bytes(text)
        (tmp_path / "half.bin").write_bytes(b"")
        image = picture(40, 48)
        out = Upscaler(str(tmp_path / "half.param"), device=-1, tile=32, tile_pad=4).upscale(image)
        assert out.shape == (80, 96, 3)


HEAD = ("Interp up 1 1 t up 0=1 1=2.0 2=2.0", "Convolution last 1 1 up out 0=3 1=3 4=1 5=0 6=0")


def test_stage_reach_counts_kernels_and_dilation_and_short_stages_merge():
    text = param("Input in 0 1 data",
                 "Convolution c1 1 1 data a 0=8 1=3 4=1 5=0 6=0",    # reach 1
                 "Convolution c2 1 1 a b 0=8 1=5 2=2 4=4 5=0 6=0",   # 5x5, dilation 2: 4
                 "Convolution c3 1 1 b c 0=8 1=7 4=3 5=0 6=0",       # 3: a stage of 8 ends here
                 "ReLU r 1 1 c d",
                 "Convolution c4 1 1 d e 0=16 1=17 4=8 5=0 6=0",     # 8: another
                 "Convolution c5 1 1 e t 0=8 1=3 4=1 5=0 6=0", *HEAD)  # a tail of 1 joins it
    plan = plan_network(text, "data", "out")
    assert [(s.source, s.target, s.reach, s.channels) for s in plan.stages] == [("data", "c", 8, 8), ("c", "t", 9, 8)]


@pytest.mark.parametrize("layer", ["Pooling p 1 1 a t 0=0 1=3 2=1 3=1",     # reach not known here
                                   "Convolution c2 1 1 a t 0=8 1=3 4=0 5=0 6=0",  # shrinks its input
                                   "Concat j 2 1 a a t 0=1"])                    # joins along a side
def test_a_trunk_with_a_layer_of_unknown_reach_runs_whole_but_keeps_its_head(layer):
    text = param("Input in 0 1 data", "Convolution c1 1 1 data a 0=8 1=3 4=1 5=0 6=0", layer, *HEAD)
    plan = plan_network(text, "data", "out")
    assert plan is not None and plan.cut_blob == "t" and plan.stages == ()


def test_the_cut_network_gives_the_whole_networks_numbers(monkeypatch):
    # 40x52 pads to a 60x72 window: the head runs on several pieces.
    image = picture(40, 52, seed=5)
    split = Upscaler("realesrgan-x4plus-anime", device=-1, tile=0)
    assert isinstance(split._net, network_mod.SplitNetwork)
    monkeypatch.setattr(engine_mod, "plan_network", lambda *args: None)
    whole = Upscaler("realesrgan-x4plus-anime", device=-1, tile=0)
    assert isinstance(whole._net, network_mod.Network)
    assert np.abs(split.upscale(image).astype(int) - whole.upscale(image)).max() <= 1


def test_the_head_runs_only_on_the_box_asked_for():
    up = Upscaler("realesrgan-x4plus-anime", device=-1, tile=0)
    window = picture(60, 70, seed=2).astype(np.float32) / 255
    full = up._net.run(window)
    box = up._net.run(window, (10, 50, 7, 61))
    assert box.shape == (40 * 4, 54 * 4, 3)
    assert np.abs(box - full[40:200, 28:244]).max() < 1e-4


def test_the_cut_network_lets_the_cpu_take_larger_tiles(monkeypatch):
    split = Upscaler("realesrgan-x4plus", device=-1)
    monkeypatch.setattr(engine_mod, "plan_network", lambda *args: None)
    whole = Upscaler("realesrgan-x4plus", device=-1)
    monkeypatch.setattr(engine_mod.budget, "available_memory", lambda: 8 << 30)
    monkeypatch.setattr(Upscaler, "_stage_budget", lambda self: -1)  # the cut alone, without stages
    assert split._auto_tile(split._net, 2000, 2000)[0] >= 2 * whole._auto_tile(whole._net, 2000, 2000)[0]


@pytest.mark.parametrize("scale,by", [(2, 2), (1, 4)])
def test_an_unshuffling_rrdbnet_is_planned_past_its_unshuffle_and_crop(unshuffled, scale, by):
    spec = unshuffled[scale]
    plan = plan_network(spec.param_path.read_bytes(), spec.input_blob, spec.output_blob)
    layers = {layer.name: layer for layer in parse_param(spec.param_path.read_bytes()).layers}
    assert plan.unshuffle == by and plan.entry == layers["pixel_unshuffle"].tops[0]
    assert plan.head_output == layers["conv_last"].tops[0] and len(plan.stages) == 3
    assert plan.stages[0].source == plan.entry and plan.stages[-1].target == plan.cut_blob


def test_unshuffled_planes_are_what_the_network_opening_makes():
    planes = np.arange(2 * 5 * 7, dtype=np.float32).reshape(2, 5, 7)
    out = network_mod.unshuffle(planes, 2)
    assert out.shape == (8, 3, 4)
    # Channel c*4 + dy*2 + dx holds pixel (2y + dy, 2x + dx) of channel c.
    assert out[1 * 4 + 1 * 2 + 0, 1, 2] == planes[1, 3, 4]
    # Reflected at the bottom and right without repeating the edge: row 5 is row 3.
    assert out[0 * 4 + 1 * 2 + 0, 2, 0] == planes[0, 3, 0] and out[0 * 4 + 0 * 2 + 1, 0, 3] == planes[0, 0, 5]


@pytest.mark.parametrize("scale", [2, 1])
@pytest.mark.parametrize("shape,tta", [((45, 38, 4), False), ((50, 61, 1), False), ((37, 44, 3), True),
                                       ((35, 42, 4), True)])
def test_an_unshuffling_rrdbnet_tiled_or_staged_gives_the_whole_networks_picture(unshuffled, scale, shape, tta):
    spec = unshuffled[scale]
    image = picture(*shape, seed=scale)
    whole_net = network_mod.Network(str(spec.param_path), str(spec.bin_path), network_mod.devices.CPU,
                                    spec.input_blob, spec.output_blob)
    try:
        with Upscaler(spec, device=-1, tile=max(shape[:2]), tta=tta) as up:  # one window, the net split
            assert isinstance(up._net, network_mod.SplitNetwork)
            whole = up.upscale(image)
        with Upscaler(spec, device=-1, tile=32, tta=tta) as up:
            staged = up._stage_maps(up._net, *shape[:2], 32 + up.overlap) is not None
            tiled = up.upscale(image)
    finally:
        whole_net.release()
    assert staged
    assert tiled.shape == whole.shape == (shape[0] * scale, shape[1] * scale, shape[2])
    assert np.abs(tiled.astype(int) - whole).max() <= 1


def test_an_unshuffling_split_network_matches_the_unsplit_one(unshuffled):
    spec = unshuffled[2]
    image = np.random.default_rng(3).uniform(0, 1, (41, 33, 3)).astype(np.float32)
    net = network_mod.Network(str(spec.param_path), str(spec.bin_path), network_mod.devices.CPU,
                              spec.input_blob, spec.output_blob)
    plan = plan_network(spec.param_path.read_bytes(), spec.input_blob, spec.output_blob)
    split = network_mod.SplitNetwork(net, plan, 8)
    try:
        whole = net.run(image)
        assert np.abs(split.run(image) - whole).max() < 1e-4
        box = (4, 37, 6, 33)  # as a window's kept box: from whole blocks on, to the picture's side
        assert np.abs(split.run(image, box) - whole[8:74, 12:66]).max() < 1e-4
        # A side under a block: reflected by numpy as the engine pads such windows, never
        # left to the network's own pad, which reads past it (NaN on some runs).
        tiny = split.run(image[:1, :5])
        padded = net.run(np.pad(image[:1, :5], ((0, 1), (0, 1), (0, 0)), mode="reflect"))[:2, :10]
        assert tiny.shape == (2, 10, 3) and np.abs(tiny - padded).max() < 1e-4
    finally:
        net.release()


def test_a_network_resampling_with_aligned_corners_keeps_the_context_asked_for(tmp_path):
    # Its samples sit where the window's size puts them (align_corner=1), so
    # context out of any reach still moves them: --tile-pad 60 cut to 2 set a third
    # of this network's samples apart, by up to 35 levels.
    from ncnn_sr.netsplit import network_reach

    param = tmp_path / "corners.param"
    param.write_text("7767517\n5 6\nInput data 0 1 data\nSplit split 1 2 data a b\n"
                     "Interp corners 1 1 a up 0=2 1=2.0 2=2.0 6=1\nInterp near 1 1 b nearest 0=1 1=2.0 2=2.0\n"
                     "BinaryOp add 2 1 up nearest output 0=0\n")
    (tmp_path / "corners.bin").write_bytes(b"")
    assert network_reach(param.read_bytes(), "output") is None
    assert network_reach(param.read_bytes().replace(b" 6=1", b""), "output") == 2
    assert Upscaler(str(param), device=-1, tile=32, tile_pad=60).tile_pad == 60


def test_a_padding_first_before_a_layer_whose_first_number_is_an_array_is_no_traceback():
    # The unshuffle check read the layer after a first Padding as a Reorg's stride
    # before it looked at its type: a ReLU's -23300= array (a damaged file) gave a
    # TypeError's traceback, for ncnn-sr and the drop-in alike.
    param = (b"7767517\n3 3\nInput in 0 1 data\nPadding p 1 1 data a 1=1 3=1\n"
             b"ReLU r 1 1 a out -23300=2,0,64\n")
    assert plan_network(param, "data", "out") is None


@pytest.mark.parametrize("text", [b"7767517\nx 1\nInput in 0 1 in\n", b"123\n1 1\nInput in 0 1 in\n",
                                  b"7767517\n1 1\nInput in zero 1 in\n"])
def test_a_damaged_params_refusal_is_freed_once_dropped(text):
    # It was kept in a local ('bad') of the parsing's frame, in its own traceback: a
    # cycle that held that frame (the file's text and rows) and the frames it went
    # through, a caller's weights among them, until a full collection.
    import gc
    import weakref

    from ncnn_sr.errors import ModelError

    gc.collect()
    gc.disable()  # what a cycle holds stays, as it does between collections
    try:
        with pytest.raises(ModelError, match="is not an ncnn param file") as raised:
            parse_param(text, "damaged")
        error = weakref.ref(raised.value)
        del raised
        assert error() is None
    finally:
        gc.enable()
