"""Exact tiling: the trunk run stage by stage over the whole picture gives the whole
picture's numbers, on a numpy stand-in network and on a real RRDBNet."""
import tracemalloc

import numpy as np
import pytest

from conftest import picture, psnr
from test_convert import random_rrdb
from ncnn_sr import Upscaler
from ncnn_sr import engine as engine_mod
from ncnn_sr import staged, staged_run
from ncnn_sr.convert import convert_weights, write_model
from ncnn_sr.netsplit import Stage


def blur(planes: np.ndarray) -> np.ndarray:
    """A 3x3 box filter with zeros outside, like a convolution's padding."""
    padded = np.pad(planes, ((0, 0), (1, 1), (1, 1)))
    h, w = planes.shape[1:]
    return sum(padded[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)) / 9


STAGES = (Stage("data", "s1", 3, 4), Stage("s1", "s2", 2, 4), Stage("s2", "s3", 4, 4))


def stand_in(inputs: dict, target: str) -> np.ndarray:
    """Stage k: ``reach`` blurs of its source, squashed, plus one blur of the picture
    (the cheap long skip every stage may recompute)."""
    stage = next(s for s in STAGES if s.target == target)
    x = inputs[stage.source]
    if x.shape[0] == 3:
        x = np.concatenate([x, x[:1]])
    for _ in range(stage.reach):
        x = np.tanh(blur(x) * 1.5)
    return (x + blur(inputs["data"])[[0, 1, 2, 0]]).astype(np.float32)


def whole(picture_planes: np.ndarray) -> np.ndarray:
    features = picture_planes
    for stage in STAGES:
        features = stand_in({stage.source: features, "data": picture_planes}, stage.target)
    return features


@pytest.mark.parametrize("h,w,longest", [(37, 91, 20), (64, 64, 30), (50, 13, 9), (20, 20, 100)])
def test_stages_stitched_window_by_window_equal_the_whole_run(h, w, longest):
    planes = np.random.RandomState(h).rand(3, h, w).astype(np.float32)
    calls = []
    got = staged.run_stages(stand_in, planes, "data", STAGES, longest, on_window=lambda: calls.append(1))
    assert np.abs(got - whole(planes)).max() < 1e-5
    assert len(calls) == staged.window_count(STAGES, h, w, longest)
    if longest < min(h, w):
        assert len(calls) > len(STAGES)  # really in windows


def test_windows_without_the_reach_would_show_seams():
    # The check above can fail: one pixel less of context per stage breaks it.
    planes = np.random.RandomState(1).rand(3, 40, 40).astype(np.float32)
    short = tuple(Stage(s.source, s.target, s.reach - 1, s.channels) for s in STAGES)
    got = staged.run_stages(stand_in, planes, "data", short, 20)
    assert np.abs(got - whole(planes)).max() > 1e-3


# --- on the real network --------------------------------------------------------------

MODEL = "realesrgan-x4plus-anime"  # RRDBNet with 6 blocks: the real thing, small


@pytest.fixture(scope="module")
def ups():
    made = {}

    def get(**kwargs):
        key = tuple(sorted(kwargs.items()))
        if key not in made:
            made[key] = Upscaler(MODEL, device=-1, **kwargs)
        return made[key]
    return get


def spy_stages(monkeypatch):
    runs = []
    real = staged.run_stages

    def spy(*args, **kwargs):
        runs.append(args[6])  # the maps' number type
        return real(*args, **kwargs)
    monkeypatch.setattr(staged, "run_stages", spy)
    return runs


@pytest.mark.parametrize("channels,dtype", [(3, np.uint8), (4, np.uint8), (1, np.uint16)])
def test_tiled_output_is_the_whole_pictures_on_the_cpu(channels, dtype, ups, monkeypatch):
    image = picture(44, 70, channels=channels, dtype=dtype, seed=channels)
    want = ups(tile=0).upscale(image)
    runs = spy_stages(monkeypatch)
    got = ups(tile=32).upscale(image)
    assert len(runs) == 1
    assert np.abs(got.astype(int) - want).max() <= (1 if dtype == np.uint8 else 257)
    reference = ups(tile=32, tile_pad=10).upscale(image)  # what tiles without stages give
    assert np.abs(reference.astype(int) - want).max() > (10 if dtype == np.uint8 else 2570)


def test_tta_tiled_in_stages_is_the_whole_pictures_tta(ups, monkeypatch):
    image = picture(36, 44, seed=4)
    want = ups(tile=0, tta=True).upscale(image)
    runs = spy_stages(monkeypatch)
    got = ups(tile=32, tta=True).upscale(image)
    assert len(runs) == 8
    assert np.abs(got.astype(int) - want).max() <= 1


def test_with_room_only_for_half_precision_maps_it_stays_within_a_grey_level(ups, monkeypatch):
    image = picture(44, 70)
    want = ups(tile=0).upscale(image)
    up = ups(tile=32)
    longest = 32 + 2 * up.tile_pad + up.overlap
    need = {dtype: staged.map_bytes(up._net.plan.stages, 64, 90, longest, dtype) for dtype in (np.float32, np.float16)}
    monkeypatch.setattr(Upscaler, "_stage_budget", lambda self: (need[np.float16] + need[np.float32]) // 2)
    runs = spy_stages(monkeypatch)
    got = up.upscale(image)
    assert runs == [np.float16]
    assert np.abs(got.astype(int) - want).max() <= 1 and psnr(got, want) > 55


def test_without_room_for_the_maps_it_blends_windows_instead(ups, monkeypatch):
    image = picture(44, 70)
    runs = spy_stages(monkeypatch)
    up = ups(tile=32)
    monkeypatch.setattr(Upscaler, "_stage_budget", lambda self: 0)
    blended = up.upscale(image)
    assert runs == []
    assert psnr(blended, ups(tile=0).upscale(image)) > 30


def test_the_reference_rule_never_runs_in_stages(ups, monkeypatch):
    runs = spy_stages(monkeypatch)
    ups(tile=32, tile_pad=10).upscale(picture(44, 70))
    assert runs == []


def test_exact_false_blends_where_stages_would_fit(ups, monkeypatch):
    runs = spy_stages(monkeypatch)
    ups(tile=32, exact=False).upscale(picture(44, 70))
    assert runs == []


@pytest.mark.parametrize("kwargs, stages", [({}, True), ({"exact": False}, False), ({"tile_pad": 10}, False)])
def test_stages_says_whether_a_tiled_run_may_go_in_stages(ups, kwargs, stages):
    # It said True on the CPU for exact=False and the reference rule, which never stage.
    assert ups(tile=32, **kwargs).stages is stages


def test_exact_tiles_and_the_reference_rule_cannot_both_be_asked_for():
    from ncnn_sr.errors import InputError

    with pytest.raises(InputError, match="exclude each other"):
        Upscaler(MODEL, device=-1, tile_pad=10, exact=True)


def test_staged_progress_counts_every_window_and_can_stop_the_work(ups):
    calls = []
    ups(tile=32).upscale(picture(44, 70), progress=lambda done, total: calls.append((done, total)))
    total = calls[-1][1]
    assert calls == [(i, total) for i in range(1, total + 1)] and total > 6 * 2

    class Stop(Exception):
        pass

    def stop(done, total):
        if done == 3:
            raise Stop
    with pytest.raises(Stop):
        ups(tile=32).upscale(picture(44, 70), progress=stop)


def test_a_staged_tta_run_says_its_tiles_not_each_window_of_each_pass(ups, monkeypatch, capsys):
    # Its 6 tiles were said as "1/192 tiles" ... "192/192 tiles": each window of each
    # stage of each of the eight passes counted as a tile.
    from ncnn_sr import console

    calls = []
    ups(tile=32, tta=True).upscale(picture(44, 70), progress=lambda done, total: calls.append((done, total)))
    assert calls[-1][0] == calls[-1][1] > 6 and calls[-1][1].tiles == 6  # a 2 x 3 grid of 32 px tiles
    monkeypatch.setattr(console._Meter, "PLAIN_EVERY", 0)
    tiles = console.TileBar("ncnn-sr")
    for done, total in calls:
        tiles(done, total)
    tiles.close()
    lines = capsys.readouterr().err.splitlines()
    counts = [float(line.split()[1].split("/")[0]) for line in lines]
    assert all(line.split()[1].endswith("/6") for line in lines), lines
    assert counts == sorted(counts) and counts[0] < 1 and lines[-1].startswith("ncnn-sr: 6/6 tiles, done in")
    # The reference's lines (the drop-in's, which never stages): one a tile, to 100.00%.
    for done, total in calls:
        console.tile_percent(done, total)
    assert capsys.readouterr().err.splitlines() == ["16.67%", "33.33%", "50.00%", "66.67%", "83.33%", "100.00%"]


def test_the_automatic_tile_leaves_room_for_the_maps(ups, monkeypatch):
    monkeypatch.setattr(engine_mod.budget, "available_memory", lambda: 8 << 30)
    up = ups(tile=0)
    with_maps, staged_ok = up._auto_tile(up._net, 1000, 1000)
    monkeypatch.setattr(Upscaler, "_stage_budget", lambda self: -1)  # maps never fit
    without, blended = up._auto_tile(up._net, 1000, 1000)
    assert 0 < with_maps < without and staged_ok and not blended


@pytest.mark.parametrize("height,width", [(256, 256), (720, 1280), (1080, 1920)])
def test_more_memory_never_gives_a_smaller_staged_tile(height, width, ups, monkeypatch):
    # Float32 maps, chosen once they fit half the maps' budget, took twice the room of
    # the float16 ones just below it: 720x1280 staged in 176 px tiles with 2 GB
    # available, and in 144 px ones with 2.5 GB.
    up = ups(tile=0)
    staged_tiles = []
    for mb in range(64, 6144, 16):
        monkeypatch.setattr(engine_mod.budget, "available_memory", lambda: mb << 20)
        tile, stages = up._auto_tile(up._net, height, width)
        if stages:
            staged_tiles.append((tile, mb))
            if stages is np.float16:  # the run keeps to the maps the tile was chosen for
                assert up._layout(up._net, height, width, tile, stages)[2][0] is np.float16
                assert up._layout(up._net, height, width, tile, True)[2][0] is np.float32
    assert staged_tiles  # the sweep reaches stages
    shrunk = [(before, after) for before, after in zip(staged_tiles, staged_tiles[1:]) if after[0] < before[0]]
    assert not shrunk, f"(tile, MB available) staged: {shrunk[:3]}"


def test_calls_sharing_the_budget_stage_when_the_maps_do_not_shrink_the_tile(monkeypatch):
    # found by a bug hunt: with two calls at once the budget allows 112 px tiles, under
    # the 128 px floor, so RRDBNet on the CPU never ran in stages
    monkeypatch.setattr(engine_mod.budget, "available_memory", lambda: 8 << 30)
    up = Upscaler(MODEL, device=-1, concurrency=2)
    assert up._auto_tile(up._net, 220, 220) == (112, True)
    assert up._auto_tile(up._net, 40, 40) == (0, False)  # one window: exact already


def test_stages_are_chosen_while_they_cost_little_more_than_blending(monkeypatch):
    # The README promises exact tiles on the CPU up to about 2 megapixels; with two
    # calls at once every picture over 240 px blended, as the maps took its tile under
    # a fixed 128 px floor, though 96 px stages cost less than 112 px blended windows.
    monkeypatch.setattr(engine_mod.budget, "available_memory", lambda: 16 << 30)
    two = Upscaler(MODEL, device=-1, concurrency=2)
    assert two._auto_tile(two._net, 400, 400) == (96, True)
    assert two._staged_cost(two._net.plan, 96) < two._blended_cost(112)
    # Where the maps would shrink the tile so far that stages cost much more, blend.
    assert two._auto_tile(two._net, 1024, 1024) == (112, False)
    one = Upscaler(MODEL, device=-1)
    assert one._auto_tile(one._net, 1080, 1920) == (144, True)  # 2.5 % more than 192 px blended


def test_grey_counts_as_rgb_in_the_memory_of_tta_passes(ups):
    up = ups(tta=True)
    assert up._stage_maps(up._net, 60, 60, 64, channels=1) == up._stage_maps(up._net, 60, 60, 64, channels=3)


def tiny_rrdbnet(folder):
    """A random one-block RRDBNet at x4 with 8 features: stages in a blink."""
    return write_model(convert_weights(random_rrdb(3, blocks=1), fp16=False), folder, "tiny")


@pytest.mark.parametrize("channels", [3, 1])
def test_tta_in_stages_holds_no_more_memory_than_it_counts(tmp_path, channels, monkeypatch):
    # What TTA adds to a staged run's memory is counted among its maps (_stage_maps),
    # which decide whether it stages: it held three float copies of the result more.
    spec = tiny_rrdbnet(tmp_path)
    image = picture(150, 150, channels=channels)
    monkeypatch.setattr(staged_run, "TTA_BAND_BYTES", 1 << 16)  # a count as tight as a large picture's
    peaks, counts = [], []
    for tta in (False, True):
        up = Upscaler(spec, device="cpu", precision="fp32", tile=64, tta=tta)
        counts.append(up._stage_maps(up._net, 150, 150, 64 + 2 * up.tile_pad + up.overlap, channels)[1])
        up.upscale(image)  # ncnn's pools and numpy's first calls, outside the count
        runs = spy_stages(monkeypatch)
        tracemalloc.start()
        try:
            up.upscale(image)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert len(runs) == (8 if tta else 1)
    assert peaks[1] - peaks[0] <= counts[1] - counts[0]


def test_tta_in_stages_rounds_its_sum_band_by_band_as_whole(tmp_path, monkeypatch):
    spec = tiny_rrdbnet(tmp_path)
    up = Upscaler(spec, device="cpu", precision="fp32", tile=32, tta=True)
    for channels in (1, 3, 4):
        image = picture(37, 45, channels=channels, seed=channels)
        whole = up.upscale(image)
        monkeypatch.setattr(staged_run, "TTA_BAND_BYTES", 7000)  # a few rows at a time
        assert np.array_equal(up.upscale(image), whole)
        monkeypatch.undo()
