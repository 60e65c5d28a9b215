"""The Vulkan path, on whatever device there is (lavapipe in CI): tiny inputs only."""
import logging
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import discrete, load_interrupted, picture, psnr, upscale_in_threads
from ncnn_sr import ModelError, Upscaler, get_device, list_devices
from ncnn_sr import engine as engine_mod
from ncnn_sr import interruptible
from ncnn_sr import network as network_mod
from ncnn_sr import staged
from ncnn_sr import windows as windows_mod

MODEL = "realesr-animevideov3-x2"


@pytest.fixture(autouse=True)
def no_silent_cpu_fallback(request, caplog):
    """A wrong GPU result once read as a lack of memory and was redone on the CPU, so
    tests comparing with the CPU passed on the CPU's own output."""
    caplog.set_level(logging.WARNING, logger="ncnn_sr")
    yield
    if "out_of_memory" not in request.node.name:
        assert "ran out of memory" not in caplog.text


def test_devices_lists_the_gpu_with_a_heap_budget_then_the_cpu(gpu):
    found = list_devices()
    assert found[gpu].is_gpu and found[gpu].heap_budget_mb > 0
    assert found[-1].index == -1 and not found[-1].is_gpu


def test_auto_on_this_machine_is_a_hardware_gpu_or_the_cpu(gpu):
    chosen = get_device("auto")
    assert chosen.kind != "cpu" or not chosen.is_gpu


# Padded by 10 px a side: 32x36, 29x31 and 26x27 pixels. The odd ones once went to the
# GPU in a layout ncnn's upload misreads (garbage at 18 dB, or NaN taken for a lack of
# memory and run on the CPU instead).
@pytest.mark.parametrize("h,w", [(12, 16), (9, 11), (6, 7)])
def test_gpu_result_matches_the_cpu_result(gpu, h, w):
    image = picture(h, w)
    up = Upscaler(MODEL, device=gpu)
    on_gpu = up.upscale(image)
    assert up.device.is_gpu
    on_cpu = Upscaler(MODEL, device=-1).upscale(image)
    assert on_gpu.shape == on_cpu.shape
    assert psnr(on_gpu, on_cpu) > 45  # fp16 storage on the GPU: 51-57 dB


def test_bf16_is_a_cpu_mode_and_the_gpu_keeps_its_default(gpu, caplog):
    # bf16 on Vulkan measured under the 50 dB bar (docs/benchmarks.md).
    image = picture(12, 16)
    default = Upscaler(MODEL, device=gpu).upscale(image)
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        asked_bf16 = Upscaler(MODEL, device=gpu, precision="bf16").upscale(image)
    assert "bf16 is a CPU mode" in caplog.text
    assert np.array_equal(asked_bf16, default)


def test_fp32_on_the_gpu_is_closer_to_the_cpu(gpu):
    image = picture(12, 16)
    on_cpu = Upscaler(MODEL, device=-1).upscale(image)
    fp32 = Upscaler(MODEL, device=gpu, precision="fp32").upscale(image)
    assert np.abs(fp32.astype(int) - on_cpu).max() <= 1


def test_gpu_tiles_with_alpha_match_the_cpu(gpu):
    image = picture(34, 40, channels=4)
    out = Upscaler(MODEL, device=gpu, tile=32).upscale(image)
    assert out.shape == (68, 80, 4)
    assert psnr(out, Upscaler(MODEL, device=-1, tile=32).upscale(image)) > 40


def test_gpu_tta_matches_the_cpu(gpu):
    image = picture(8, 8)
    out = Upscaler(MODEL, device=gpu, tta=True).upscale(image)
    assert psnr(out, Upscaler(MODEL, device=-1, tta=True).upscale(image)) > 40


def test_gpu_out_of_memory_falls_back_to_the_cpu(gpu, monkeypatch, caplog):
    image = picture(12, 16)
    want = Upscaler(MODEL, device=-1).upscale(image)
    up = Upscaler(MODEL, device=gpu, tile=64)
    real_run = network_mod.Network.run

    def gpu_always_fails(self, window, keep=None):
        if self.device.is_gpu:
            raise network_mod.NetFailure("injected out of memory")
        return real_run(self, window, keep)

    monkeypatch.setattr(network_mod.Network, "run", gpu_always_fails)
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        got = up.upscale(image)
    assert not up.device.is_gpu
    assert np.array_equal(got, want)
    assert "falling back to the CPU" in caplog.text


def test_process_exits_cleanly_with_a_gpu_upscaler_still_alive(gpu, tmp_path):
    script = (
        "import numpy as np\n"
        "from ncnn_sr import Upscaler\n"
        f"KEPT = Upscaler('{MODEL}', device={gpu})\n"
        "KEPT.upscale(np.zeros((8, 8, 3), np.uint8))\n"
        "print('done')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"


def test_one_gpu_upscaler_serves_several_threads_at_once(gpu):
    up = Upscaler(MODEL, device=gpu)
    images = [picture(8, 10, seed=s) for s in range(3)]
    expected = [up.upscale(im) for im in images]
    for got, want in zip(upscale_in_threads(up, images), expected):
        assert np.array_equal(got, want)


def test_a_gpu_lane_and_a_cpu_lane_share_a_folder(gpu, tmp_path):
    from PIL import Image

    from ncnn_sr.jobs import plan_jobs
    from ncnn_sr.lanes import Lane
    from ncnn_sr.pipeline import Pipeline

    (tmp_path / "in").mkdir()
    for i in range(4):
        Image.fromarray(picture(8, 8, seed=i)).save(tmp_path / "in" / f"p{i}.png")
    lanes = [Lane(Upscaler(MODEL, device=gpu), 1), Lane(Upscaler(MODEL, device=-1), 1)]
    summary = Pipeline(lanes).run(plan_jobs(tmp_path / "in", tmp_path / "out").jobs)
    assert summary.ok == 4
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"p{i}.png" for i in range(4)]


def test_gpu_and_cpu_together_from_the_command_line(gpu, tmp_path):
    from PIL import Image

    from test_cli import installed

    (tmp_path / "in").mkdir()
    for i in range(3):
        Image.fromarray(picture(8, 8, seed=i)).save(tmp_path / "in" / f"p{i}.png")
    proc = subprocess.run([installed("ncnn-sr"), "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-n",
                           "realesr-animevideov3", "-s", "2", "-g", f"{gpu},-1", "-t", "32,0", "-j", "1:1,1:2", "-v"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "on GPU" in proc.stderr and "on CPU" in proc.stderr
    assert len(list((tmp_path / "out").iterdir())) == 3
    # Each picture is one lane's own result, whichever lane took it (fp16 storage on
    # the GPU: the two differ).
    on_gpu, on_cpu = Upscaler(MODEL, device=gpu), Upscaler(MODEL, device=-1)
    for i in range(3):
        got, image = np.asarray(Image.open(tmp_path / "out" / f"p{i}.png")), picture(8, 8, seed=i)
        assert np.array_equal(got, on_gpu.upscale(image)) or np.array_equal(got, on_cpu.upscale(image))


def test_two_lanes_on_one_gpu_give_each_picture_as_one_lane_does(gpu, tmp_path):
    # Two networks of one model on one device, run at once from four workers.
    from PIL import Image

    from test_cli import installed

    (tmp_path / "in").mkdir()
    images = [picture(8, 8, seed=i) for i in range(4)]
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / "in" / f"p{i}.png")
    proc = subprocess.run([installed("ncnn-sr"), "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-n",
                           "realesr-animevideov3", "-s", "2", "-g", f"{gpu},{gpu}", "-t", "32,32", "-j", "1:2,2:2",
                           "-v"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("proc worker(s)") == 2
    up = Upscaler(MODEL, device=gpu)
    for i, image in enumerate(images):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / f"p{i}.png")), up.upscale(image))


def test_custom_model_that_starts_in_place_runs_on_the_gpu(gpu, tmp_path):
    from PIL import Image

    from test_cli import in_place_first_model, installed

    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    proc = subprocess.run([installed("ncnn-sr"), "-i", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"),
                           "-n", str(in_place_first_model(tmp_path)), "-g", str(gpu)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "in.png") as a, Image.open(tmp_path / "out.png") as b:
        assert np.array_equal(np.asarray(b)[::2, ::2], np.asarray(a))


@pytest.mark.parametrize("layer, said", [
    ("Padding p 1 1 data a 0=4096 1=4096 2=4096 3=4096 7=4096 8=4096", "layer p (Padding) makes an 8193x8193x8195 blob"),
    ("Tile p 1 1 data a -23302=3,1,30000,30000", "layer p (Tile) makes a 30000x30000x3 blob"),
    ("Fold p 1 1 data a 1=1 20=40000 21=40000", "layer p (Fold) makes a 40000x40000x1 blob"),
])
def test_custom_model_with_a_fixed_blob_of_any_layer_too_large_for_the_gpu_is_refused(gpu, tmp_path, layer, said):
    # Only an Interp's 3= and 4= were checked against the heap; ncnn does not check the
    # Vulkan buffer it fails to make (a 65536x65536 Interp's segfaulted lavapipe).
    (tmp_path / "big.param").write_text(f"7767517\n3 3\nInput data 0 1 data\n{layer}\n"
                                        "Interp up 1 1 a out 0=2 1=2.0 2=2.0\n")
    (tmp_path / "big.bin").write_bytes(b"")
    with pytest.raises(ModelError, match=re.escape(said) + r" \(\d+ MB\), more than the \d+ MB of "):
        Upscaler(str(tmp_path / "big.param"), device=gpu)


def test_custom_model_whose_output_size_is_fixed_is_refused_before_it_loads_on_the_gpu(gpu, tmp_path):
    # Its test runs made an 8192x8192 output each (over 200 s and 4.4 GB on lavapipe),
    # to end on "not an upscaler of any picture".
    (tmp_path / "fixed.param").write_text("7767517\n2 2\nInput data 0 1 data\n"
                                          "Interp up 1 1 data out 0=2 3=8192 4=8192\n")
    (tmp_path / "fixed.bin").write_bytes(b"")
    with pytest.raises(ModelError, match=r"makes an 8192x8192 output whatever the picture \(layer up, "
                                         r"Interp, fixes its size\): not an upscaler$"):
        Upscaler(str(tmp_path / "fixed.param"), device=gpu)


# --- exact tiling by stages on the GPU ---------------------------------------------------

RRDB = "realesrgan-x4plus-anime"  # RRDBNet with 6 blocks: the real thing, small


def staged_runs(monkeypatch) -> list:
    runs = []
    real = staged.run_stages
    monkeypatch.setattr(staged, "run_stages", lambda *a, **k: runs.append(1) or real(*a, **k))
    return runs


def test_a_gpu_in_host_memory_tiles_in_stages_like_the_whole_picture(gpu, monkeypatch):
    # lavapipe computes in the host's memory, as integrated GPUs do: no bus to cross.
    assert get_device(gpu).host_memory
    image = picture(24, 44)
    whole = Upscaler(RRDB, device=gpu, precision="fp32").upscale(image)
    runs = staged_runs(monkeypatch)
    tiled = Upscaler(RRDB, device=gpu, tile=32, precision="fp32").upscale(image)
    assert runs == [1]
    assert np.abs(tiled.astype(int) - whole).max() <= 1
    reference = Upscaler(RRDB, device=gpu, tile=32, tile_pad=10, precision="fp32").upscale(image)
    assert np.abs(reference.astype(int) - whole).max() > 10  # what tiles without stages give


def test_a_discrete_gpu_stages_only_when_asked_and_its_trunk_cannot_run_whole(gpu, monkeypatch):
    # Each stage would cross the bus: the trunk runs whole there instead (resident.py,
    # tests/test_resident.py), or the windows blend.
    from ncnn_sr.devices import Device

    here = get_device(gpu)
    discrete = Device(here.index, here.name, "discrete", here.heap_budget_mb)
    image = picture(20, 72)  # wider than one blended window, which would be the whole run
    runs = staged_runs(monkeypatch)
    Upscaler(RRDB, device=discrete, tile=32).upscale(image)
    Upscaler(RRDB, device=discrete, tile=32, exact=True).upscale(image)
    assert runs == []
    monkeypatch.setattr("ncnn_sr.tile_choice.TRUNK_BYTES_PER_CELL", 10 ** 9)  # no room for it
    Upscaler(RRDB, device=discrete, tile=32).upscale(image)
    assert runs == []
    Upscaler(RRDB, device=discrete, tile=32, exact=True).upscale(image)
    assert runs == [1]


def test_a_discrete_gpu_stages_a_groupnorm_model_without_being_asked(gpu, tmp_path, monkeypatch):
    # Windows alone would each normalise by their own statistics (tests/test_plksr.py).
    from test_plksr import random_plksr, two_halves

    from ncnn_sr.convert import convert_weights, write_model

    spec = write_model(convert_weights(random_plksr(blocks=1)), tmp_path, "plksr")
    image = two_halves(36, 72)
    runs = staged_runs(monkeypatch)
    tiled = Upscaler(spec, device=discrete(gpu), tile=32).upscale(image)
    assert runs == []  # its trunk ran whole on the GPU (resident.py), normalised as the network does
    whole = Upscaler(spec, device=gpu).upscale(image)
    assert psnr(tiled, whole) > 45
    monkeypatch.setattr("ncnn_sr.tile_choice.TRUNK_BYTES_PER_CELL", 10 ** 9)  # no room for that
    tiled = Upscaler(spec, device=discrete(gpu), tile=32).upscale(image)
    assert runs == [1]
    assert psnr(tiled, whole) > 45


def count_windows_at_once(monkeypatch) -> list:
    """[most windows seen running at once]; threads that ran windows are named."""
    import threading

    lock, active, most = threading.Lock(), [0], [0]
    real = engine_mod.Upscaler._window_output

    def counted(self, *args):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        try:
            return real(self, *args)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(engine_mod.Upscaler, "_window_output", counted)
    return most


def window_threads() -> list:
    import threading

    # is_alive: a joined thread can linger in enumerate() for a moment after its run.
    return [t for t in threading.enumerate() if t.name.startswith("ncnn-sr-window") and t.is_alive()]


@pytest.mark.parametrize("kwargs", [{}, {"tile_pad": 10}], ids=["blended", "reference"])
def test_a_discrete_gpu_keeps_windows_in_flight_with_the_same_output(gpu, monkeypatch, kwargs):
    image = picture(70, 52, channels=4)
    one = Upscaler(MODEL, device=discrete(gpu), tile=32, alpha="model", **kwargs)
    one._windows_ahead = 1
    want = one.upscale(image)
    most = count_windows_at_once(monkeypatch)
    up = Upscaler(MODEL, device=discrete(gpu), tile=32, alpha="model", **kwargs)
    seen = []
    got = up.upscale(image, progress=lambda done, total: seen.append((done, total)))
    assert most[0] > 1
    assert np.array_equal(got, want)
    assert [d for d, _ in seen] == list(range(1, len(seen) + 1)) and seen[-1][0] == seen[-1][1] >= 3
    assert window_threads() == []


def test_windows_in_flight_stay_within_the_heap_budget(gpu):
    from ncnn_sr.devices import Device

    here = get_device(gpu)
    box = (0, 0, 220, 220, (10, 210, 10, 210))  # a 200 px tile with its context
    up = Upscaler(MODEL, device=discrete(gpu))

    def ahead(kind, budget_mb, boxes, concurrency=1, precision="default"):
        up._concurrency = concurrency
        net = type("Net", (), {"device": Device(here.index, "x", kind, budget_mb), "precision": precision})
        return up._windows_in_flight(net, boxes)

    assert ahead("discrete", 143_000, [box] * 9) == windows_mod.GPU_WINDOWS_IN_FLIGHT
    assert ahead("discrete", 143_000, [box] * 2) == 2
    assert ahead("discrete", 143_000, [box]) == 1
    assert ahead("integrated", 143_000, [box] * 9) == 1  # shares the host's memory and cores with us
    assert ahead("cpu", 143_000, [box] * 9) == 1
    assert ahead("discrete", 2_000, [box] * 9) == 1  # a 2 GB card: one 220 px window at a time
    assert ahead("discrete", 5_000, [box] * 9) == 2
    assert ahead("discrete", 5_000, [box] * 9, concurrency=2) == 1  # two calls share the card
    assert ahead("discrete", 5_000, [box] * 9, precision="fp32") == 1  # float32 blobs are twice as large
    assert ahead("discrete", 10_000, [box] * 9, precision="fp32") == 2


def test_out_of_memory_in_a_window_in_flight_retries_smaller_tiles_and_leaves_no_thread(gpu, monkeypatch, caplog):
    image = picture(40, 70)
    want = Upscaler(MODEL, device=discrete(gpu), tile=32, tile_pad=10).upscale(image)
    real_run, calls = network_mod.Network.run, []

    def second_window_fails_once(self, window, keep=None):
        calls.append(1)
        if len(calls) == 2:
            raise network_mod.NetFailure("injected out of memory")
        return real_run(self, window, keep)

    monkeypatch.setattr(network_mod.Network, "run", second_window_fails_once)
    up = Upscaler(MODEL, device=discrete(gpu), tile=64, tile_pad=10)
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        got = up.upscale(image)
    assert "retrying with 32px tiles" in caplog.text and up.device.is_gpu
    assert np.array_equal(got, want)
    assert window_threads() == []


def test_a_progress_callback_that_raises_stops_the_windows_in_flight(gpu, monkeypatch):
    most = count_windows_at_once(monkeypatch)
    up = Upscaler(MODEL, device=discrete(gpu), tile=32)

    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        up.upscale(picture(70, 70), progress=stop)
    assert most[0] > 1 and window_threads() == []
    assert up.upscale(picture(20, 20)).shape == (40, 40, 3)  # the upscaler still works


def test_a_large_discrete_gpu_tiles_at_400_px_and_keeps_three_windows_in_flight(gpu):
    from ncnn_sr.devices import Device

    big = Device(get_device(gpu).index, "big", "discrete", 143_000)
    up = Upscaler(MODEL, device=big)
    tile, _ = up._auto_tile(up._net, 2000, 3000)
    assert tile == 400
    boxes = [(0, 0, tile + WINDOW_EXTRA, tile + WINDOW_EXTRA, None)] * 20
    assert up._windows_in_flight(up._net, boxes) == windows_mod.GPU_WINDOWS_IN_FLIGHT


def test_a_second_ctrl_c_while_windows_finish_frees_the_network_only_once_no_window_runs(gpu, monkeypatch):
    # A Ctrl-C takes the main thread out of the call at once (interruptible), while its
    # windows still run: the network, closed then, is freed only once the last of them
    # ends (a window still in a freed network would crash).
    import signal
    import threading
    import time

    real, started = engine_mod.Upscaler._window_output, []

    def slow_after_the_first(self, *args):
        started.append(1)
        if len(started) > 1:
            time.sleep(1.5)
        return real(self, *args)

    monkeypatch.setattr(engine_mod.Upscaler, "_window_output", slow_after_the_first)
    main, second, over = threading.main_thread().ident, [], threading.Event()

    def once_the_call_waits_for_its_windows():
        # The call, left by the first, waits for the work's end (interruptible): there.
        # A timer of 0.3 s did this; late on a loaded machine, its Ctrl-C would land
        # past the call, in the test itself (a KeyboardInterrupt ends pytest's run).
        for _ in range(30000):  # a bound against a hang, not a timing
            if over.is_set():  # no Ctrl-C lands past the call
                return
            frame = sys._current_frames().get(main)
            while frame is not None and frame.f_code is not interruptible._next.__code__:
                frame = frame.f_back
            if frame is not None:
                second.append(True)
                signal.pthread_kill(main, signal.SIGINT)
                return
            time.sleep(0.001)

    def ctrl_c_twice(done, total):
        threading.Thread(target=once_the_call_waits_for_its_windows, daemon=True).start()
        raise KeyboardInterrupt

    up = Upscaler(MODEL, device=discrete(gpu), tile=32)
    try:
        with pytest.raises(KeyboardInterrupt):
            up.upscale(picture(70, 70), progress=ctrl_c_twice)
    finally:
        over.set()
    assert second == [True]
    freed, release = [], up._release_networks
    monkeypatch.setattr(up, "_release_networks", lambda: (freed.append(len(window_threads())), release()))
    up.close()  # does not wait for the call its caller left
    deadline = time.monotonic() + 120
    while not freed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert freed == [0] and up._running == 0 and window_threads() == []


def test_the_reference_rule_keeps_the_reference_tools_200_px_automatic_tile_on_a_large_gpu(gpu):
    # What realesrgan-ncnn-vulkan -t 0 runs on a 24 GB card: its promise is the C++ code's output.
    from ncnn_sr.devices import Device

    big = Device(get_device(gpu).index, "big", "discrete", 24_000)
    up = Upscaler(MODEL, device=big, tile_pad=10)
    assert up._auto_tile(up._net, 2000, 3000)[0] == 200
    image = picture(12, 230)  # split at x = 200 by the C++ code
    assert np.array_equal(up.upscale(image), Upscaler(MODEL, device=big, tile=200, tile_pad=10).upscale(image))


def test_exiting_while_a_daemon_thread_upscales_on_the_gpu_does_not_kill_the_process(gpu):
    # found by a bug hunt: the Vulkan instance was torn down under the thread's
    # network: SIGSEGV or SIGABRT ("pool allocator destroyed too early"), five in five
    from conftest import exit_while_upscaling

    for _ in range(2):
        proc = exit_while_upscaling(gpu, 16, 0.3)
        assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_second_ctrl_c_while_python_exits_does_not_tear_vulkan_down_under_the_window(gpu):
    # found by a Ctrl-C audit: the second Ctrl-C came out of the exit's wait for the
    # window the first came in, and the instance's teardown went on under it: SIGSEGV
    from conftest import ctrl_c_twice_as_python_exits
    from test_engine import EXIT_WAIT_SAID

    for size in (64, 256, 1024):  # lavapipe's window outlasts both Ctrl-Cs at 64 px; a GPU's may not
        proc = ctrl_c_twice_as_python_exits(gpu, size)
        if proc.returncode != 0 or "while ncnn ran" in proc.stdout:
            break
    assert proc.stdout == "interrupted\nsecond Ctrl-C while ncnn ran\n", proc.stderr[-2000:]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == EXIT_WAIT_SAID


@pytest.mark.parametrize("kind", ["compact x2", "rrdbnet x2", "rrdbnet x4", "span x2", "realplksr x2",
                                  "realplksr layer-norm x2", "plksr x2"])
def test_a_converted_model_runs_on_the_gpu_as_on_the_cpu(gpu, tmp_path, kind):
    # Its layers (Padding, Reorg, Eltwise, Crop to another blob's size; SPAN's Swish,
    # Sigmoid, BinaryOp and Concat; RealPLKSR's Mish, Slice, GroupNorm, UnaryOp and
    # depthwise convolution; PLKSR's GELU) are ones the catalog's models do not use: each must run
    # on Vulkan, or fall back, the same.
    from test_convert import random_compact, random_rrdb
    from test_plksr import random_plksr
    from test_span import random_span

    from ncnn_sr.convert import convert_weights, write_model

    if "plksr" in kind:
        state = random_plksr(layer_norm="layer-norm" in kind, paper=kind.startswith("plksr"))
    elif kind.startswith("span"):
        state = random_span(blocks=1)
        # Random weights on its input times 255 give outputs in the hundreds, all
        # clipped: brought to about 0..1, where the two devices' rounding shows.
        state["upsampler.0.weight"] *= 0.005
        state["upsampler.0.bias"] += 0.5
    else:
        state = random_compact() if kind == "compact x2" else random_rrdb(in_ch=12 if "x2" in kind else 3, blocks=1)
    spec = write_model(convert_weights(state), tmp_path, "mine")
    image = picture(9, 11)
    on_gpu = Upscaler(spec, device=gpu).upscale(image)
    on_cpu = Upscaler(spec, device=-1).upscale(image)
    assert on_gpu.shape == on_cpu.shape == (9 * spec.scale, 11 * spec.scale, 3)
    assert psnr(on_gpu, on_cpu) > 45  # fp16 storage on the GPU: 53-59 dB on lavapipe


def test_a_ctrl_c_while_a_model_loads_on_a_gpu_ends_the_load_at_the_next_read(gpu, monkeypatch):
    # ncnn holds the GIL while it loads a model, compiling a shader per layer on a GPU:
    # a Ctrl-C waited seconds for the whole load.
    assert load_interrupted(monkeypatch, get_device(gpu)) <= 4


# What the default blended windows add to a tile: 10 px of context a side and the blend.
WINDOW_EXTRA = 2 * 10 + engine_mod.DEFAULT_OVERLAP


def blowing_up_model(folder, name: str, channels: int) -> str:
    """An x4 custom model that makes ``channels`` maps at 32 times the picture's size
    (an x32 deconvolution, then a 1x1 convolution) before it pools them back."""
    c = channels
    (folder / f"{name}.param").write_text(
        "7767517\n5 5\nInput data 0 1 data\nDeconvolution d 1 1 data a 0=3 1=32 3=32 6=9216\n"
        f"Convolution w 1 1 a b 0={c} 1=1 6={3 * c}\nPooling p 1 1 b e 0=1 1=8 2=8\n"
        f"Convolution c 1 1 e out 0=3 1=1 6={3 * c}\n")
    (folder / f"{name}.bin").write_bytes(bytes(4 + 4 * 9216) + bytes(4 + 12 * c) + bytes(4 + 12 * c))
    return str(folder / f"{name}.param")


def test_the_auto_tile_shrinks_to_a_custom_models_blobs_or_the_model_is_refused(gpu, tmp_path):
    # The auto tile came from the heap alone: an x32 deconvolution of 256 maps on a
    # 100x100 picture (lavapipe's 100 px tile) asked for a 5 GB buffer, ncnn printed
    # "vkCreateBuffer failed -2" and the process segfaulted after 140 s.
    device = get_device(gpu)
    heap = device.heap_budget_mb << 20
    smallest = 32 + WINDOW_EXTRA  # the window of a 32 px tile
    per_channel = (smallest * 32) ** 2 * 2  # fp16
    too_wide = blowing_up_model(tmp_path, "too-wide", heap // per_channel + 1)
    with pytest.raises(ModelError, match=rf"layer w \(Convolution\) makes an? {smallest * 32}x{smallest * 32}x\d+ blob "
                                         rf"\(\d+ MB\) from the {smallest}x{smallest} window of a 32 px tile, the "
                                         r"smallest, more than the \d+ MB of GPU"):
        Upscaler(too_wide, device=gpu)
    # Half the heap at the smallest tile: more than a quarter of it at the heap's own.
    with Upscaler(blowing_up_model(tmp_path, "wide", heap // per_channel // 2), device=gpu) as up:
        tile = up._auto_tile(up._net, 1000, 1000)[0]
        assert tile == 32 < engine_mod.devices.gpu_tile_for(device)


def test_a_given_tile_whose_window_makes_a_custom_models_blob_larger_than_the_heap_is_refused(gpu, tmp_path):
    # A tile given (-t 400) was not checked against the model's blobs: the window of a
    # 100x100 picture made an x32 deconvolution's 256 maps 8 GB, past lavapipe's heap.
    device = get_device(gpu)
    heap = device.heap_budget_mb << 20
    channels = heap // (((32 + WINDOW_EXTRA) * 32) ** 2 * 2) // 2  # half the heap at the 32 px tile's window
    wide = blowing_up_model(tmp_path, "wide", channels)
    fits = max(t for t in range(32, 400) if ((t + WINDOW_EXTRA) * 32) ** 2 * channels * 2 <= heap)
    side = 400 + WINDOW_EXTRA
    # The first too large: the deconvolution's 3 maps, from which the rest grow.
    with pytest.raises(ModelError, match=rf"layer d \(Deconvolution\) makes an? {side * 32}x{side * 32}x3 blob \(\d+ MB\) "
                                         rf"from the {side}x{side} window of a 400 px tile, more than the \d+ MB of GPU .*: "
                                         rf"the largest tile that fits is {fits} px$"):
        Upscaler(wide, device=gpu, tile=400)
    with Upscaler(wide, device=gpu, tile=fits) as up:
        with pytest.raises(ModelError, match=f"the largest tile that fits is {fits} px"):
            up.tile = fits + 1
        assert up.tile == fits
