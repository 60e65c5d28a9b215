"""The whole-trunk run of a split network (resident.py): the rewritten net gives the
whole network's numbers piece by piece, on the CPU here (cheap), and an Upscaler on a
discrete GPU (lavapipe standing in for one) uses it where the picture fits."""
import re

import numpy as np
import pytest

from conftest import discrete, picture, psnr
from ncnn_sr import Upscaler
from ncnn_sr import resident as resident_mod
from ncnn_sr import staged
from ncnn_sr.devices import CPU
from ncnn_sr.models import resolve_model
from ncnn_sr.netsplit import plan_network
from ncnn_sr.network import NetFailure, Network, unshuffle
from ncnn_sr.resident import ResidentNetwork, piece_spans
from ncnn_sr.tiles import Span

RRDB = "realesrgan-x4plus-anime"  # RRDBNet with 6 blocks: the real thing, small


def whole_and_pieces(spec, image: np.ndarray, piece: int):
    """The network's float output for ``image`` run whole, and the rewritten net's
    pieces placed together; with the number of pieces."""
    param, weights = spec.param_path.read_bytes(), spec.bin_path.read_bytes()
    plan = plan_network(param, spec.input_blob, spec.output_blob)
    planes = image.astype(np.float32).transpose(2, 0, 1) / 255
    net = Network(str(spec.param_path), str(spec.bin_path), CPU, spec.input_blob, spec.output_blob, "fp32")
    whole = net.extract({spec.input_blob: planes}, spec.output_blob)
    res = ResidentNetwork.load(param, weights, plan, spec.output_blob, CPU, "fp32", "test", head_piece=piece)
    u = plan.unshuffle
    blob, fed = res.entry(planes)
    cells = (0, fed.shape[1], 0, fed.shape[2])
    out, count = None, 0
    for row, col, s, part in res.run_pieces(fed, cells):
        if out is None:
            out = np.zeros((fed.shape[1] * s, fed.shape[2] * s, part.shape[2]), np.float32)
        out[row.start * s:row.end * s, col.start * s:col.end * s] = part
        count += 1
    res.release()
    net.release()
    return whole.transpose(1, 2, 0), out[:whole.shape[1], :whole.shape[2]], count, u


@pytest.mark.parametrize("piece", [12, 1000])
def test_the_heads_of_one_trunk_give_the_whole_networks_output(piece):
    whole, pieces, count, _ = whole_and_pieces(resolve_model(RRDB), picture(30, 41), piece)
    assert (count > 1) == (piece == 12)
    assert np.abs(pieces - whole).max() < 1e-4


@pytest.mark.parametrize("scale", [2, 1])
def test_an_unshuffling_network_is_fed_at_its_entry_and_gives_its_output(unshuffled, scale):
    # Its picture comes in unshuffled at the Reorg's output, and its head ends before
    # the crop to the picture's size, as a staged run feeds and reads it.
    image = picture(42, 62)
    whole, pieces, count, u = whole_and_pieces(unshuffled[scale], image, 2)
    assert count > 1 and u == {2: 2, 1: 4}[scale]
    assert whole.shape == (42 * scale, 62 * scale, 3)
    assert np.abs(pieces - whole).max() < 1e-4


def test_the_rewritten_net_has_one_trunk_and_a_head_per_copy():
    spec = resolve_model(RRDB)
    param, weights = spec.param_path.read_bytes(), spec.bin_path.read_bytes()
    plan = plan_network(param, spec.input_blob, spec.output_blob)
    text, binary, entry, probes = resident_mod.rewrite(param, weights, plan, spec.output_blob, copies=3)
    # A probe a stage but the last, whose output is the heads' cut: one GPU submission a stage.
    assert len(probes) == len(plan.stages) - 1 == 5
    lines = text.splitlines()
    assert lines[0] == "7767517" and int(lines[1].split()[0]) == len(lines) - 2
    assert entry == spec.input_blob
    convolutions = sum(line.startswith("Convolution") for line in lines)
    original = sum(line.startswith("Convolution") for line in param.decode().splitlines())
    assert convolutions == original + 2 * 4  # the head's four convolutions twice more
    # One head is the model's own weights, in its order; each more adds the head's.
    one = resident_mod.rewrite(param, weights, plan, spec.output_blob, copies=1)[1]
    assert one == weights
    assert len(binary) - len(one) == 2 * (len(resident_mod.rewrite(param, weights, plan, spec.output_blob,
                                                                   copies=2)[1]) - len(one))


def test_the_heads_keep_each_layers_parameters_as_the_file_spells_them():
    # A quoted string parameter may hold a run of spaces: the copies must not close it up.
    spec = resolve_model(RRDB)
    param, weights = spec.param_path.read_bytes(), spec.bin_path.read_bytes()
    plan = plan_network(param, spec.input_blob, spec.output_blob)
    head = plan.head_output or spec.output_blob
    producer = next(line for line in param.decode().splitlines() if line.split()[3:4] == ["1"]
                    and head in line.split()[4:])
    spaced = producer.replace(" 1=", "   1=", 1)
    assert spaced != producer
    text = resident_mod.rewrite(param.replace(producer.encode(), spaced.encode()), weights, plan,
                                spec.output_blob, copies=2)[0]
    copies = [line for line in text.splitlines()[2:] if line.split()[1].startswith(producer.split()[1] + "_r")]
    assert len(copies) == 2 and all(line.endswith(spaced[spaced.index("0="):]) for line in copies)


def test_a_layer_whose_weights_are_unknown_leaves_the_net_as_it_is():
    spec = resolve_model(RRDB)
    param, weights = spec.param_path.read_bytes(), spec.bin_path.read_bytes()
    plan = plan_network(param, spec.input_blob, spec.output_blob)
    unknown = param.replace(b"\nConvolution ", b"\nConvolutionInt8X ", 1)
    assert resident_mod.rewrite(unknown, weights, plan, spec.output_blob) is None


def test_pieces_grow_until_the_heads_are_enough():
    rows, cols = piece_spans(400, 400, (0, 400, 0, 400), 10, 2, copies=16)
    assert len(rows) * len(cols) <= 16
    assert all(isinstance(span, Span) for span in rows + cols)
    assert rows[0].start == 0 and rows[-1].end == 400
    assert all(a.end == b.start for a, b in zip(rows, rows[1:]))
    assert piece_spans(400, 400, (0, 400, 0, 400), 400, 2, copies=16) is not None
    assert piece_spans(40, 40, (0, 40, 0, 40), 10, 2, copies=0) is None


def test_unshuffle_is_the_networks_own():
    planes = np.arange(2 * 4 * 6, dtype=np.float32).reshape(2, 4, 6)
    assert unshuffle(planes, 2).shape == (8, 2, 3)


# --- an Upscaler on a discrete GPU ----------------------------------------------------------

def counted_pieces(monkeypatch) -> list:
    """[1 for each whole-trunk run]; not the windows the same net runs (one piece each)."""
    runs = []
    real = ResidentNetwork.run_pieces

    def run_pieces(self, *args):
        if self.head_piece != resident_mod.WINDOW_PIECE:
            runs.append(1)
        return real(self, *args)

    monkeypatch.setattr(ResidentNetwork, "run_pieces", run_pieces)
    return runs


def test_a_discrete_gpu_runs_the_trunk_whole_and_gives_the_whole_pictures_output(gpu, monkeypatch):
    # Blended windows, its default before, were 33.6 dB from the whole picture on a
    # 72x90 picture with 32 px tiles; stages would cross the bus 6 times a window.
    image = picture(36, 100)
    whole = Upscaler(RRDB, device=gpu, precision="fp32").upscale(image)
    runs, stage_runs = counted_pieces(monkeypatch), []
    real = staged.run_stages
    monkeypatch.setattr(staged, "run_stages", lambda *a, **k: stage_runs.append(1) or real(*a, **k))
    up = Upscaler(RRDB, device=discrete(gpu), tile=32, precision="fp32")
    assert not up.runs_whole(36, 100)
    steps = []
    tiled = up.upscale(image, progress=lambda done, total: steps.append((done, int(total))))
    assert runs == [1] and stage_runs == []
    assert np.abs(tiled.astype(int) - whole).max() <= 1
    # A step a stage (5 probes of the 6 blocks' outputs), then a step a head piece.
    assert [done for done, _ in steps] == list(range(1, steps[-1][1] + 1)) and steps[-1][1] > 5 + 1
    blended = Upscaler(RRDB, device=discrete(gpu), tile=32, precision="fp32", exact=False).upscale(image)
    assert runs == [1]
    assert psnr(tiled, whole) > psnr(blended, whole) + 10


def test_a_picture_whose_trunk_does_not_fit_the_room_blends_as_before(gpu, monkeypatch):
    runs = counted_pieces(monkeypatch)
    image = picture(36, 44)
    up = Upscaler(RRDB, device=discrete(gpu), tile=32)
    assert up._resident_fits(up._net, 36, 44, 32)
    monkeypatch.setattr("ncnn_sr.tile_choice.TRUNK_BYTES_PER_CELL", 10 ** 9)
    assert not up._resident_fits(up._net, 36, 44, 32)
    up.upscale(image)
    assert runs == []


@pytest.mark.parametrize("exact, instead", [(None, "blended windows"), (True, "exact stages")])
def test_a_picture_whose_trunk_does_not_fit_is_said_once_with_what_runs_instead(gpu, unshuffled, caplog,
                                                                                 exact, instead):
    # Its output differs from the whole picture's where it blends: -v said nothing of it.
    import logging

    up = Upscaler(unshuffled[2], device=discrete(gpu, heap_mb=60), tile=32, exact=exact)
    assert up._resident_fits(up._net, 20, 72, 32) and not up._resident_fits(up._net, 60, 72, 32)
    with caplog.at_level(logging.INFO, logger="ncnn_sr"):
        up.upscale(picture(20, 72))
        assert not [r for r in caplog.records if "does not fit" in r.getMessage()]
        for _ in range(2):
            up.upscale(picture(60, 72))
    said = [r for r in caplog.records if "does not fit" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO
    assert "72x60" in said[0].getMessage() and said[0].getMessage().endswith(": " + instead)


def test_a_picture_of_another_size_frees_the_buffers_of_a_whole_trunk_net_kept_beside_stages(gpu, unshuffled,
                                                                                              monkeypatch):
    # With exact=True the whole-trunk net is a second net beside the staged one, and
    # only the network's and the alpha's pools were emptied: the trunk's buffers of
    # each size of picture stayed on the GPU.
    trims = []
    real = Network.trim
    monkeypatch.setattr(Network, "trim", lambda self: trims.append(self) or real(self))
    up = Upscaler(unshuffled[2], device=discrete(gpu), tile=32, exact=True)
    up.upscale(picture(20, 72))
    resident = up._resident
    assert resident is not None and resident is not up._net
    up.upscale(picture(22, 72))
    assert resident.net in trims


def test_the_reference_rule_never_runs_the_trunk_whole(gpu, monkeypatch):
    runs = counted_pieces(monkeypatch)
    Upscaler(RRDB, device=discrete(gpu), tile=32, tile_pad=10).upscale(picture(20, 40))
    assert runs == []


def test_tta_and_alpha_run_the_trunk_whole_once_a_pass(gpu, monkeypatch):
    image = picture(20, 72, channels=4)  # wider than a blended window: one would be the whole run
    whole = Upscaler(RRDB, device=gpu, precision="fp32", tta=True).upscale(image)
    runs = counted_pieces(monkeypatch)
    tiled = Upscaler(RRDB, device=discrete(gpu), tile=32, precision="fp32", tta=True).upscale(image)
    assert runs == [1] * 8
    assert tiled.shape == whole.shape and np.abs(tiled.astype(int) - whole).max() <= 1


def test_calls_at_once_share_the_net_and_each_gets_its_own_picture(gpu, monkeypatch):
    from conftest import upscale_in_threads

    images = [picture(20, 72, seed=seed) for seed in (1, 2)]
    wholes = [Upscaler(RRDB, device=gpu, precision="fp32").upscale(image) for image in images]
    runs = counted_pieces(monkeypatch)
    up = Upscaler(RRDB, device=discrete(gpu), tile=32, precision="fp32", concurrency=2)
    outs = upscale_in_threads(up, images)
    assert runs == [1, 1]
    for out, whole in zip(outs, wholes):
        assert np.abs(out.astype(int) - whole).max() <= 1


def test_a_trunk_past_its_share_of_the_calls_at_once_runs_whole_with_the_gpu_to_itself(gpu, monkeypatch):
    # A folder's two workers halved each call's room: a picture whose trunk fitted the
    # GPU alone blended in a folder, and came out another picture.
    import contextlib

    from conftest import upscale_in_threads
    from ncnn_sr import device_gate

    images = [picture(20, 72, seed=seed) for seed in (1, 2)]
    device = discrete(gpu, heap_mb=56)
    alone = [Upscaler(RRDB, device=device, tile=32).upscale(image) for image in images]
    held, real = [], device_gate.Gate.alone

    @contextlib.contextmanager
    def recorded(self):
        with real(self) as got:
            held.append("in")
            yield got
            held.append("out")

    monkeypatch.setattr(device_gate.Gate, "alone", recorded)
    runs = counted_pieces(monkeypatch)
    up = Upscaler(RRDB, device=device, tile=32, concurrency=2)
    outs = upscale_in_threads(up, images)
    assert runs == [1, 1] and held == ["in", "out"] * 2
    for out, one in zip(outs, alone):
        assert np.array_equal(out, one)
    need, room, share = up._resident_room(up._net, 20, 72, 32)
    assert share < need <= room


def test_a_call_from_the_progress_of_a_call_in_the_main_thread_takes_the_gpu_alone_without_a_hang(gpu):
    # The main thread's call runs in a helper and reports here: the call made in its
    # progress, another helper, waited for the first's hold, which waited for it.
    import signal
    import threading

    assert threading.current_thread() is threading.main_thread()
    outer, inner = picture(20, 72, seed=1), picture(20, 72, seed=2)
    device = discrete(gpu, heap_mb=56)
    up = Upscaler(RRDB, device=device, tile=32, concurrency=2)
    alone = Upscaler(RRDB, device=device, tile=32).upscale(inner)
    got = []

    def progress(done, total):
        if not got:
            got.append(up.upscale(inner))

    def hung(signum, frame):
        raise TimeoutError("the nested call waited for ever")

    before = signal.signal(signal.SIGALRM, hung)
    signal.alarm(300)
    try:
        up.upscale(outer, progress=progress)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)
    assert np.array_equal(got[0], alone)


@pytest.mark.parametrize("scale", [2, 1])
def test_an_unshuffling_network_runs_its_trunk_whole_in_whole_blocks(gpu, monkeypatch, unshuffled, scale):
    image = picture(30, 90)
    whole = Upscaler(unshuffled[scale], device=gpu, precision="fp32").upscale(image)
    runs = counted_pieces(monkeypatch)
    tiled = Upscaler(unshuffled[scale], device=discrete(gpu), tile=32, precision="fp32").upscale(image)
    assert runs == [1]
    assert tiled.shape == whole.shape and np.abs(tiled.astype(int) - whole).max() <= 1


def test_a_whole_trunk_net_that_cannot_be_made_where_stages_are_asked_for_says_they_run(gpu, monkeypatch, caplog):
    import logging

    runs = []
    real = staged.run_stages
    monkeypatch.setattr(staged, "run_stages", lambda *a, **k: runs.append(1) or real(*a, **k))
    monkeypatch.setattr(ResidentNetwork, "load", lambda *args, **kwargs: None)
    with caplog.at_level(logging.INFO, logger="ncnn_sr"):
        Upscaler(RRDB, device=discrete(gpu), tile=32, exact=True).upscale(picture(20, 72))
    said = [r.getMessage() for r in caplog.records if "cannot run whole" in r.getMessage()]
    assert runs == [1] and len(said) == 1 and said[0].endswith(": exact stages") and "blended" not in said[0]


@pytest.mark.parametrize("failure", ["raises", "cannot cut"])
def test_a_whole_trunk_net_that_cannot_be_made_leaves_blended_windows_said_once(gpu, monkeypatch, caplog, failure):
    import logging

    from ncnn_sr.errors import ModelError

    def load(*args, **kwargs):
        if failure == "raises":
            raise ModelError("ncnn could not parse it")
        return None  # as rewrite gives where a layer's weights are not known

    monkeypatch.setattr(ResidentNetwork, "load", load)
    image = picture(20, 72)
    blended = Upscaler(RRDB, device=discrete(gpu), tile=32, exact=False).upscale(image)
    with caplog.at_level(logging.INFO, logger="ncnn_sr"):
        # (made as the network loads, the windows' net, or for the first picture that fits)
        up = Upscaler(RRDB, device=discrete(gpu), tile=32)
        outs = [up.upscale(image) for _ in range(2)]
    said = [r for r in caplog.records if "cannot run whole" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO and "blended windows" in said[0].getMessage()
    assert all(np.array_equal(out, blended) for out in outs)


def test_a_groupnorm_network_runs_its_trunk_whole_with_the_whole_pictures_statistics(gpu, monkeypatch, tmp_path):
    from test_plksr import plksr_model, two_halves

    spec = plksr_model(tmp_path, blocks=2, kernel=7)
    image = two_halves(40, 90)  # halves of other brightness: tiles alone get other statistics
    whole = Upscaler(spec, device=gpu, precision="fp32").upscale(image)
    runs = counted_pieces(monkeypatch)
    tiled = Upscaler(spec, device=discrete(gpu), tile=32, precision="fp32").upscale(image)
    assert runs == [1]
    assert np.abs(tiled.astype(int) - whole).max() <= 1
    blended = Upscaler(spec, device=discrete(gpu), tile=32, precision="fp32", exact=False).upscale(image)
    assert np.abs(blended.astype(int) - whole).max() > 10  # what the whole trunk avoids


def test_a_groupnorm_network_whose_trunk_net_cannot_be_made_is_said_to_differ(gpu, monkeypatch, tmp_path, caplog):
    # Its picture fit the whole trunk, so the warning was left out; but the net could
    # not be made, and with no room for stages it ran blended windows unsaid.
    import logging

    from test_plksr import plksr_model, two_halves

    spec = plksr_model(tmp_path, blocks=2, kernel=7)
    monkeypatch.setattr(ResidentNetwork, "load", lambda *args, **kwargs: None)
    monkeypatch.setattr("ncnn_sr.tile_choice.STAGE_MAP_CAP", 0)
    up = Upscaler(spec, device=discrete(gpu), tile=32, precision="fp32")
    assert up._resident_fits(up._net, 40, 90, 32)
    with caplog.at_level(logging.INFO, logger="ncnn_sr"):
        up.upscale(two_halves(40, 90))
    said = [r.getMessage() for r in caplog.records if "GroupNorm" in r.getMessage()]
    assert len(said) == 1


def whole_trunk_extractions(monkeypatch, fail_at: int | None = None) -> list:
    """The outputs the whole-trunk net is asked for, as they are asked; with
    ``fail_at``, that one (counted from 1) fails as a GPU out of memory does."""
    asked = []
    real = Network._extracted

    def extracted(self, ex, inputs, output):
        if output.startswith("resident_probe_") or re.search(r"_r[0-9]+$", output):
            asked.append(output)
            if len(asked) == fail_at:
                raise NetFailure("ncnn error -100 on the stand-in", -100)
        return real(self, ex, inputs, output)

    monkeypatch.setattr(Network, "_extracted", extracted)
    return asked


@pytest.mark.parametrize("fail_at", [3, 7])  # a stage of the trunk; the second head piece (after 5 stages)
def test_a_gpu_out_of_memory_in_the_whole_trunk_run_halves_the_tile_and_the_picture_comes_out_whole(
        gpu, monkeypatch, fail_at):
    image = picture(20, 150)
    whole = Upscaler(RRDB, device=gpu, precision="fp32").upscale(image)
    up = Upscaler(RRDB, device=discrete(gpu), tile=64, precision="fp32")
    runs = counted_pieces(monkeypatch)
    asked = whole_trunk_extractions(monkeypatch, fail_at=fail_at)
    out = up.upscale(image)
    assert asked[fail_at - 1].startswith("output" if fail_at > 5 else "resident_probe_")
    assert up._tile == 32 and runs == [1, 1]
    assert np.abs(out.astype(int) - whole).max() <= 1


@pytest.mark.parametrize("stop_at", [1, 3])
def test_a_progress_that_raises_mid_trunk_stops_at_that_stage_and_close_frees_the_net(gpu, monkeypatch, stop_at):
    class Cancelled(Exception):
        pass

    def progress(done, total):
        if done == stop_at:
            raise Cancelled

    up = Upscaler(RRDB, device=discrete(gpu), tile=32, precision="fp32")
    asked = whole_trunk_extractions(monkeypatch)
    with pytest.raises(Cancelled):
        up.upscale(picture(20, 72), progress=progress)
    assert asked == [f"resident_probe_{k}" for k in range(stop_at)]
    resident = up._resident
    up.close()
    assert resident.net._net is None


def test_a_float32_head_piece_takes_twice_the_room_as_the_trunk_does(gpu):
    # On the stand-in, realesrgan-x4plus's run of a 128x128 picture in 64 px pieces
    # (68x68 windows) peaked 77 MB above its start in fp16 and 193 MB in float32, over
    # the 188 MB its float32 trunk was counted for and the 114 MB of its map and piece.
    # Here the piece (one 60x68 window) is most of the need: 100 MB counted in fp16.
    fits = {precision: Upscaler(RRDB, device=discrete(gpu, heap_mb=300), tile=64, precision=precision)
            for precision in ("default", "fp32")}
    assert fits["default"]._resident_fits(fits["default"]._net, 60, 70, 64)
    assert not fits["fp32"]._resident_fits(fits["fp32"]._net, 60, 70, 64)


def test_a_progress_that_raises_between_head_pieces_leaves_no_buffer_of_the_net_to_close(gpu):
    # The head's pieces come from a generator that keeps its ncnn extractor between
    # them: stopped there, it stayed open in the frames of the error's traceback, and
    # close() freed the pools under it ("pool allocator destroyed too early"), then
    # the process crashed as the error went (SIGSEGV). In a process of its own.
    import subprocess
    import sys
    from pathlib import Path

    code = f"""
import sys, threading
sys.path.insert(0, {str(Path(__file__).parent)!r})
from conftest import discrete, picture
from ncnn_sr import Upscaler

up = Upscaler({RRDB!r}, device=discrete({gpu}, heap_mb=40), tile=32)
kept = []

class Stop(Exception):
    pass

def progress(done, total):
    if done == total - 1:  # after the first of two head pieces, the trunk's five stages done
        raise Stop

def call():
    try:
        up.upscale(picture(12, 72), progress=progress)
    except Stop as e:
        kept.append(e)

thread = threading.Thread(target=call)
thread.start()
thread.join()
up.close()
print(len(kept), flush=True)
kept.clear()
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and proc.stdout == "1\n", proc.stderr[-2000:]
    assert "destroyed too early" not in proc.stderr, proc.stderr[-2000:]
