"""The load → proc → save pipeline as a library."""
import gc
import os
import queue
import threading
import time
import weakref
from types import SimpleNamespace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import picture, png_bytes, stored_delays
from locks_taken_back import ctrl_c_as_the_main_thread_takes_back
from ncnn_sr import InputError, Upscaler
from ncnn_sr.errors import FlagNames, SettingError, describe
from ncnn_sr.signals import HeldInterrupts
from ncnn_sr import jobs as jobs_mod, loading as loading_mod, part_files, pipeline as pipeline_mod, workers as workers_mod
from ncnn_sr.animation import read_frames
from ncnn_sr.devices import CPU
from ncnn_sr.jobs import Job, plan_jobs
from ncnn_sr.lanes import Lane, UpscalingFailed, ordered_map
from ncnn_sr.pipeline import Pipeline

MODEL = "realesr-animevideov3-x2"


def folder_of(tmp_path, count, size=(10, 12)):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(count):
        Image.fromarray(picture(*size, seed=i)).save(src / f"p{i:03d}.png")
    return plan_jobs(src, tmp_path / "out").jobs


@pytest.fixture(scope="module")
def cpu_lane():
    up = Upscaler(MODEL, device=-1, threads=1)
    yield Lane(up, 2)
    up.close()


def test_every_job_gets_one_outcome(tmp_path, cpu_lane):
    jobs = folder_of(tmp_path, 5)
    (tmp_path / "in" / "p002.png").write_text("broken")
    seen = []
    summary = Pipeline([cpu_lane], on_outcome=seen.append).run(jobs)
    assert (summary.ok, summary.failed, summary.skipped) == (4, 1, 0)
    assert sorted(o.job.source.name for o in seen) == [j.source.name for j in jobs]
    assert summary.failures[0].job.source.name == "p002.png"
    assert summary.pixels_in == 4 * 10 * 12


def test_a_picture_that_became_a_pipe_after_listing_fails_without_waiting_for_a_writer(tmp_path, cpu_lane):
    # Listed as a file, then replaced by a FIFO (a link to one, say) before its turn:
    # its header was opened to read its size, which blocks until a writer comes, and
    # the batch never ended.
    jobs = folder_of(tmp_path, 2)
    fifo = jobs[0].source
    fifo.unlink()
    os.mkfifo(fifo)
    summaries = []
    run = threading.Thread(target=lambda: summaries.append(Pipeline([cpu_lane]).run(jobs)), daemon=True)
    run.start()
    run.join(30)
    hung = run.is_alive()
    if hung:  # a writer lets the blocked open go, so that the test ends
        with open(fifo, "wb"):
            pass
        run.join(30)
    assert not hung
    assert (summaries[0].ok, summaries[0].failed) == (1, 1)
    assert summaries[0].failures[0].message == f"{fifo}: not a picture: it is a pipe (FIFO), not a regular file"


def test_a_picture_whose_output_sub_folder_is_a_file_fails_before_it_is_upscaled(tmp_path, cpu_lane):
    # A recursive run whose output tree holds a file where a sub-folder goes: each
    # picture of it was upscaled (hours of a folder of photos on the CPU), then failed
    # as it was written.
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(picture(10, 12, seed=0)).save(src / "a.png")
    Image.fromarray(picture(10, 12, seed=1)).save(src / "sub" / "b.png")
    out = tmp_path / "out"
    jobs = plan_jobs(src, out, recursive=True).jobs
    out.mkdir()
    (out / "sub").write_text("in the way")
    summary = Pipeline([cpu_lane]).run(jobs)
    assert (summary.ok, summary.failed) == (1, 1)
    assert summary.pixels_in == 10 * 12  # a.png's alone
    assert summary.failures[0].message == (f"cannot make the folder of {out / 'sub' / 'b.png'}: {out / 'sub'} is a "
                                           "file, not a folder")


def test_results_equal_the_plain_engine(tmp_path, cpu_lane):
    jobs = folder_of(tmp_path, 3)
    Pipeline([cpu_lane]).run(jobs)
    for i, job in enumerate(jobs):
        want = cpu_lane.upscaler.upscale(picture(10, 12, seed=i))
        assert np.array_equal(np.asarray(Image.open(job.target)), want)


def test_resize_options_reach_every_picture(tmp_path, cpu_lane):
    jobs = folder_of(tmp_path, 2)
    Pipeline([cpu_lane], width=30).run(jobs)
    assert all(Image.open(j.target).size == (30, 25) for j in jobs)


def test_pictures_in_flight_stay_bounded(tmp_path, cpu_lane, monkeypatch):
    jobs = folder_of(tmp_path, 40, size=(6, 6))
    loaded, done, worst = [0], [0], [0]
    lock = threading.Lock()
    real_read = loading_mod.read_image

    def counting_read(path):
        with lock:
            loaded[0] += 1
            worst[0] = max(worst[0], loaded[0] - done[0])
        return real_read(path)

    def finished(outcome):
        with lock:
            done[0] += 1

    monkeypatch.setattr(loading_mod, "read_image", counting_read)
    Pipeline([cpu_lane], load_workers=2, queue_size=3, on_outcome=finished).run(jobs)
    assert done[0] == 40
    # two queues of 3, two proc workers, two savers, two loaders holding one each
    assert worst[0] <= 3 + 3 + 2 + 2 + 2


def test_cancel_stops_soon_and_writes_nothing_half(tmp_path, cpu_lane):
    jobs = folder_of(tmp_path, 30)
    holder = {}

    def stop_after_two(outcome):
        if holder["p"]._summary.done >= 2:
            holder["p"].cancel()

    holder["p"] = Pipeline([cpu_lane], on_outcome=stop_after_two)
    summary = holder["p"].run(jobs)
    assert summary.cancelled and 2 <= summary.done < 30
    written = list((tmp_path / "out").iterdir())
    assert len(written) == summary.ok and not [p for p in written if p.name.startswith(".")]


def test_a_pipeline_cancelled_runs_again_in_full(tmp_path, cpu_lane):
    # found by a library audit: the cancel (or a Ctrl-C, or a full disk's stop) stayed
    # set, so the same Pipeline's next run did nothing and said it was cancelled
    jobs = folder_of(tmp_path, 6, size=(4, 4))
    holder = {}

    def stop_after_one(outcome):
        holder["p"].cancel()

    holder["p"] = Pipeline([cpu_lane], on_outcome=stop_after_one)
    first = holder["p"].run(jobs)
    assert first.cancelled and first.done < 6
    holder["p"]._on_outcome = None
    again = holder["p"].run(jobs)
    assert not again.cancelled and again.ok == 6


@pytest.mark.parametrize("part", [loading_mod.Loading, pipeline_mod.Failover], ids=["Loading", "Failover"])
def test_a_pipelines_parts_take_of_it_only_what_they_declare(part, tmp_path, cpu_lane):
    # Loading and Failover read attributes the Pipeline sets: listed in their
    # docstrings in part ("_flags, _resize..."), the rest was found by reading.
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(part))
    own = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            (own if isinstance(node.ctx, ast.Store) else used).add(node.attr)
    assert used - own == set(part.__annotations__)
    pipeline = Pipeline([cpu_lane])
    pipeline.run(folder_of(tmp_path, 1, size=(4, 4)))
    assert [name for name in part.__annotations__ if not hasattr(pipeline, name)] == []


def test_a_pipeline_running_refuses_a_second_run_at_once_and_its_summary_counts_its_own_jobs(tmp_path, cpu_lane):
    # found by a library audit: two threads running one Pipeline shared its summary,
    # each run said ok=30 for its 15 pictures, and a cancel or a new run's start reset
    # the other's state.
    jobs = folder_of(tmp_path, 3)
    first_outcome, go_on = threading.Event(), threading.Event()

    def on_outcome(outcome):
        first_outcome.set()
        go_on.wait(30)

    pipeline = Pipeline([cpu_lane], on_outcome=on_outcome)
    summaries = []
    running = threading.Thread(target=lambda: summaries.append(pipeline.run(jobs)))
    running.start()
    try:
        assert first_outcome.wait(30)
        with pytest.raises(InputError, match="^this Pipeline is running: make a Pipeline for each run at once$"):
            pipeline.run(jobs)
    finally:
        go_on.set()
        running.join(30)
    assert summaries[0].ok == 3
    assert pipeline.run(jobs).ok == 3  # once that run is over, it runs again


def test_a_pipeline_runs_again_into_a_folder_that_became_writable(tmp_path, cpu_lane, monkeypatch):
    # found by a library audit: a folder found unwritable stayed so for the Pipeline's
    # later runs, each picture failing on the first run's reason
    jobs = folder_of(tmp_path, 2, size=(4, 4))
    real = loading_mod.check_writable

    def refused(folder):
        raise InputError(f"cannot write into {folder}: read-only")

    monkeypatch.setattr(loading_mod, "check_writable", refused)
    p = Pipeline([cpu_lane])
    assert p.run(jobs).failed == 2
    monkeypatch.setattr(loading_mod, "check_writable", real)
    assert p.run(jobs).ok == 2


def test_a_pipeline_interrupted_inside_a_picture_refuses_to_run_again(tmp_path):
    # Its workers still wait on its cancel: a new run that cleared it would have let
    # them go on with the old run's pictures.
    import os
    import signal

    gate, sent = threading.Event(), []

    class Held(SlowFake):
        def upscale(self, image, progress=None, **kw):
            if not sent:  # once the picture is inside: a timer of 0.5 s came before it on a slow machine
                sent.append(True)
                os.kill(os.getpid(), signal.SIGINT)
            gate.wait(30)
            return image

    jobs = folder_of(tmp_path, 2, size=(4, 4))
    p = Pipeline([Lane(Held(0), 1)])
    try:
        assert p.run(jobs).abandoned
        with pytest.raises(InputError, match=r"interrupted inside a picture \(Summary.abandoned\): make a new"):
            p.run(jobs)
    finally:
        gate.set()
    assert not (tmp_path / "out").exists()
    assert Pipeline([Lane(SlowFake(0), 1)]).run(jobs).ok == 2


def test_a_ctrl_c_with_every_worker_idle_abandons_nothing_and_the_pipeline_runs_again(tmp_path):
    # Idle workers, waiting for work, counted as left inside a picture: the Pipeline
    # refused a second run, and the command took its hard exit.
    import os
    import signal

    jobs = folder_of(tmp_path, 1, size=(4, 4))
    before = set(threading.enumerate())

    def interrupt(outcome):  # from the save, which the Ctrl-C waits for
        os.kill(os.getpid(), signal.SIGINT)

    p = Pipeline([Lane(SlowFake(0), 2), Lane(SlowFake(0), 1)], load_workers=2, save_workers=2, on_outcome=interrupt)
    summary = p.run(jobs)
    assert summary.cancelled and not summary.abandoned
    assert set(threading.enumerate()) <= before  # every worker ended
    p._on_outcome = None
    assert p.run(jobs).ok == 1


def test_a_ctrl_c_while_the_jobs_wait_to_come_leaves_the_run_abandoned_without_waiting(tmp_path):
    # A loader inside the caller's jobs iterator, which may wait for ever (files as they
    # arrive): the Ctrl-C may not wait for it.
    import os
    import signal

    jobs = folder_of(tmp_path, 1, size=(4, 4))
    gate = threading.Event()

    def arriving():
        yield jobs[0]
        os.kill(os.getpid(), signal.SIGINT)
        gate.wait(30)

    p = Pipeline([Lane(SlowFake(0), 1)])
    try:
        summary = p.run(arriving())
    finally:
        gate.set()
    assert summary.cancelled and summary.abandoned


def test_cancel_interrupts_a_picture_between_tiles(tmp_path):
    up = Upscaler(MODEL, device=-1, tile=32)
    src = tmp_path / "big.png"
    Image.fromarray(picture(256, 256)).save(src)
    p = Pipeline([Lane(up, 1)])
    tiles_seen = []
    real = up.upscale

    def watching(image, progress=None, **kw):
        def spy(done, total):
            tiles_seen.append(done)
            if done == 2:
                p.cancel()
            progress(done, total)
        return real(image, progress=spy, **kw)

    up.upscale = watching
    summary = p.run([Job(src, tmp_path / "big_x2.png")])
    assert summary.cancelled and summary.ok == 0
    assert max(tiles_seen) == 2  # not all 64 tiles
    assert not (tmp_path / "big_x2.png").exists()


def test_on_tile_hears_that_none_of_a_picture_that_failed_midway_is_done(tmp_path):
    # A folder's bar kept counting its tiles beside its outcome.
    class Refusing(SlowFake):
        def upscale(self, image, progress=None, **kw):
            progress(1, 4)
            progress(2, 4)
            raise InputError("refused at its third tile")

    told = []
    summary = Pipeline([Lane(Refusing(0), 1)], on_tile=lambda done, total: told.append((done, total))).run(
        folder_of(tmp_path, 1, size=(4, 4)))
    assert summary.failed == 1 and told == [(1, 4), (2, 4), (0, 4)]


def test_an_on_tile_that_fails_fails_its_picture_and_takes_no_device_out(tmp_path, warnings):
    # Its error counted as the device's: one hiccup of the progress bar took a sound
    # device out for the run, its picture said to have "failed on CPU".
    jobs = folder_of(tmp_path, 3, size=(6, 6))
    ups = [Upscaler(MODEL, device=-1, threads=1) for _ in range(2)]
    calls = []

    def on_tile(done, total):
        calls.append(done)
        if len(calls) == 1:
            raise ValueError("the bar broke")

    try:
        summary = within(60, lambda: Pipeline([Lane(up, 1) for up in ups], on_tile=on_tile).run(jobs))
    finally:
        for up in ups:
            up.close()
    assert (summary.ok, summary.failed, summary.lost, summary.stopped) == (2, 1, [], None)
    failed = summary.failures[0]
    assert failed.message == f"{failed.job.source}: on_tile, the progress callback, failed: ValueError('the bar broke')"
    assert not warnings and not (tmp_path / "out" / failed.job.target.name).exists()


class SlowFake:
    """Stands in for an Upscaler where only scheduling is under test."""

    device = CPU
    scale = 1  # it gives the picture back as it came

    def __init__(self, delay):
        self.delay, self.count = delay, 0

    def upscale(self, image, progress=None, **kw):
        time.sleep(self.delay)
        self.count += 1
        return image


def test_whole_pictures_spread_over_every_lane(tmp_path):
    jobs = folder_of(tmp_path, 12, size=(4, 4))
    fast, slow = SlowFake(0.01), SlowFake(0.05)
    summary = Pipeline([Lane(fast, 1), Lane(slow, 1)]).run(jobs)
    assert summary.ok == 12
    assert fast.count + slow.count == 12
    assert fast.count > slow.count >= 1  # the faster device takes more


class OutOfMemory:
    device = CPU
    scale = 2

    def upscale(self, image, progress=None, **kw):
        raise MemoryError


def test_a_result_too_big_for_memory_fails_its_picture_in_words(tmp_path):
    jobs = folder_of(tmp_path, 2, size=(4, 4))
    summary = Pipeline([Lane(OutOfMemory(), 1)]).run(jobs)
    assert summary.failed == 2
    # Two save threads may say theirs in either order.
    assert sorted(f.message for f in summary.failures) == [f"{j.source}: not enough memory for its result"
                                                           for j in jobs]


def test_a_result_whose_writing_cannot_fit_in_memory_fails_before_it_is_upscaled(tmp_path, monkeypatch):
    # The engine counted the result alone: a 70000x70000 png that fitted was upscaled,
    # then killed while Pillow copied it to write it. Here the 80x80 result (19200
    # bytes) fits, with Pillow's 4-byte copy (25600 bytes) it does not; the 8x8 one does.
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(picture(40, 40)).save(src / "big.png")
    Image.fromarray(picture(4, 4)).save(src / "small.png")
    monkeypatch.setattr(pipeline_mod.budget, "memory_limit", lambda: 30000)
    up = Upscaler(MODEL, device=-1, threads=1)
    sizes = []
    real = up.upscale
    up.upscale = lambda image, **kw: sizes.append(image.shape[:2]) or real(image, **kw)
    try:
        summary = Pipeline([Lane(up, 1)]).run(plan_jobs(src, tmp_path / "out").jobs)
    finally:
        up.close()
    assert (summary.ok, summary.failed) == (1, 1)
    assert summary.failures[0].message == (f"{src / 'big.png'}: its 80x80 result written as PNG needs about 44 kB "
                                           "of memory, more than the 29 kB available")
    assert sizes == [(4, 4)] and os.listdir(tmp_path / "out") == ["small.png"]


def _run_refused_from_header(src, out, need, monkeypatch):
    # One byte less memory than a doubled picture of src needs: its one picture is
    # refused, and its pixels are never read.
    monkeypatch.setattr(pipeline_mod.budget, "memory_limit", lambda: need - 1)
    reads = []
    real = loading_mod.read_image
    monkeypatch.setattr(loading_mod, "read_image", lambda path: reads.append(path) or real(path))
    summary = Pipeline([Lane(Doubling(lambda: 0), 1)]).run(plan_jobs(src, out).jobs)
    assert summary.failed == 1 and reads == []
    return summary


def test_a_result_too_large_for_memory_is_refused_from_its_header_before_its_pixels_are_read(tmp_path, monkeypatch):
    # A 13000x13000 16-bit RGBA png at -s 4 was refused ('its 52000x52000 result
    # written as PNG needs about 100.7 GB of memory, more than the 22.9 GB available')
    # only once its pixels were read: 50 s and 4 GB of memory spent on a refusal its
    # header could tell (size, channels and depth). Here read_image never runs for it.
    from ncnn_sr.images import write_bytes, write_image
    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "deep.png", np.full((20, 20, 4), 40000, np.uint16))
    need = 40 * 40 * 4 * 2 + write_bytes(40, 40, 4, 2, "png")
    summary = _run_refused_from_header(src, tmp_path / "out", need, monkeypatch)
    assert summary.failures[0].message == (f"{src / 'deep.png'}: its 40x40 result written as PNG needs about 63 kB "
                                           "of memory, more than the 62 kB available")
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("name", ["deep.tif", "deep.ppm", "deep.jp2", "deep.heic"])
def test_a_deep_picture_too_large_for_memory_is_refused_from_its_header_in_its_depth(name, tmp_path, monkeypatch):
    # Found by a user audit: the header check counted a 16-bit TIFF, JPEG 2000 or PPM
    # and a 10-bit HEIF in 8 bits, so a large one whose 16-bit result could not fit was
    # refused only once its pixels were read (minutes and GBs for a large one).
    from test_heif_avif import heic16
    from test_images import jpeg2000
    from test_tiff16 import tiff
    from ncnn_sr.images import write_bytes
    src = tmp_path / "in"
    src.mkdir()
    samples = np.random.default_rng(0).integers(0, 1 << 16, (20, 20, 3), dtype=np.uint16)
    write = {"deep.tif": lambda path: path.write_bytes(tiff(samples)),
             "deep.ppm": lambda path: path.write_bytes(b"P6 20 20 65535\n" + samples.astype(">u2").tobytes()),
             "deep.jp2": lambda path: jpeg2000(path, samples, 16), "deep.heic": lambda path: heic16(path, samples)}
    write[name](src / name)
    need = 40 * 40 * 3 * 2 + write_bytes(40, 40, 3, 2, "png")
    summary = _run_refused_from_header(src, tmp_path / "out", need, monkeypatch)
    assert summary.failures[0].message.startswith(f"{src / name}: its 40x40 result written as PNG needs about")


def test_the_header_memory_check_refuses_no_jpg_target_that_fits_as_the_png_its_transparency_makes(tmp_path,
                                                                                                   monkeypatch):
    # A jpg target of a picture with transparency is written as a png, which takes
    # less memory than the jpg of its colour would (8-bit: 4 bytes a pixel against
    # 15): its header cannot tell which it becomes, so it refuses neither.
    from ncnn_sr.images import write_bytes
    src = tmp_path / "in"
    src.mkdir()
    pixels = picture(20, 20, channels=4)
    pixels[:, :, 3] = 100
    Image.fromarray(pixels).save(src / "clear.png")
    monkeypatch.setattr(pipeline_mod.budget, "memory_limit", lambda: 40 * 40 * 4 + write_bytes(40, 40, 4, 1, "png"))
    summary = Pipeline([Lane(Doubling(lambda: 0), 1)]).run([Job(src / "clear.png", tmp_path / "out.jpg")])
    assert summary.ok == 1 and (tmp_path / "out.jpg.png").exists()


class Doubling(SlowFake):
    """A stand-in at scale 2 (each pixel repeated), which records each picture's or
    frame's height and what ``watch()`` says as it starts."""

    scale = 2

    def __init__(self, watch):
        super().__init__(0)
        self.watch, self.seen = watch, []

    def upscale(self, image, progress=None, **kw):
        self.seen.append((image.shape[0], self.watch()))
        return image.repeat(2, axis=0).repeat(2, axis=1)


def still_need(height, width, channels=3, fmt="png"):
    """What a still's 8-bit result and its writing take, as the pipeline counts it."""
    from ncnn_sr.images import write_bytes
    return height * width * channels + write_bytes(height, width, channels, 1, fmt)


def test_stills_in_flight_hold_their_memory_together(tmp_path, monkeypatch):
    # Each picture's check saw the memory as it was then, not the results of those let
    # in before it: with room for two results, six were let in at once. Here each waits
    # for room beside the others, and none fails for want of it.
    jobs = folder_of(tmp_path, 6, size=(4, 4))
    need = still_need(8, 8)
    monkeypatch.setattr(pipeline_mod.budget, "memory_limit", lambda: 2 * need + 1)
    fake = Doubling(lambda: pipeline._memory.held)
    pipeline = Pipeline([Lane(fake, 3)], load_workers=3)
    summary = pipeline.run(jobs)
    assert summary.ok == 6
    assert len(fake.seen) == 6 and all(need <= held <= 2 * need for _, held in fake.seen)
    assert pipeline._memory.held == 0


def test_stills_that_fail_give_their_memory_back(tmp_path, monkeypatch):
    # A picture's hold ends with it, failed or written: with room for one, a hold kept
    # by a failure would have the next picture wait for ever.
    jobs = folder_of(tmp_path, 3, size=(4, 4))
    monkeypatch.setattr(pipeline_mod.budget, "memory_limit", lambda: still_need(8, 8))
    pipeline = Pipeline([Lane(OutOfMemory(), 1)])
    summaries = []
    run = threading.Thread(target=lambda: summaries.append(pipeline.run(jobs)), daemon=True)
    run.start()
    run.join(60)
    hung = run.is_alive()
    if hung:
        pipeline.cancel()  # the loader waiting for room ends
    assert not hung
    assert summaries[0].failed == 3 and pipeline._memory.held == 0


def fake_gpu(index=0):
    from ncnn_sr.devices import Device
    return Device(index, "fake", "discrete", 8000)


class Broken(SlowFake):
    """A device that fails every picture in an unforeseen way (a lost Vulkan device)."""

    def __init__(self, delay=0, device=None):
        super().__init__(delay)
        self.device = device or fake_gpu()

    def upscale(self, image, progress=None, **kw):
        time.sleep(self.delay)
        self.count += 1
        raise RuntimeError("vkQueueSubmit failed")


@pytest.fixture
def warnings():
    """The library's warnings, as the commands print them."""
    import logging
    seen = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: seen.append(record.getMessage())
    logger = logging.getLogger("ncnn_sr")
    logger.addHandler(handler)
    yield seen
    logger.removeHandler(handler)


def test_a_picture_that_fails_on_one_device_alone_names_that_device(tmp_path):
    # With -g 0 the line said "upscaling failed: RuntimeError(...)", not which device
    # failed.
    jobs = folder_of(tmp_path, 2, size=(4, 4))
    summary = Pipeline([Lane(Broken(), 1)]).run(jobs)
    assert summary.failed == 2 and not summary.lost and summary.stopped is None
    for failure in summary.failures:
        assert failure.message == (f"{failure.job.source}: upscaling failed on GPU 0 (fake): "
                                   "RuntimeError('vkQueueSubmit failed')")


def test_a_device_that_fails_hands_its_picture_to_another_and_takes_no_more(tmp_path, warnings):
    # With -g 0,-1 a Vulkan error on GPU 0 failed its picture, and each later one it took.
    jobs = folder_of(tmp_path, 6, size=(4, 4))
    broken, good = Broken(), SlowFake(0.02)
    summary = Pipeline([Lane(broken, 2), Lane(good, 1)]).run(jobs)
    assert (summary.ok, summary.failed, summary.stopped) == (6, 0, None)
    assert good.count == 6 and 1 <= broken.count <= 2  # its two workers' first pictures at most
    assert summary.lost == ["GPU 0 (fake): RuntimeError('vkQueueSubmit failed')"]
    assert warnings == ["GPU 0 (fake) failed (RuntimeError('vkQueueSubmit failed')): it takes no more pictures, "
                        "the other devices go on"]


def test_a_picture_given_back_finds_a_worker_though_the_others_were_done(tmp_path):
    # The other lane's worker took its STOP while the picture was on the failing device:
    # given back, it waited for no one, and the run ended without it.
    jobs = folder_of(tmp_path, 1, size=(4, 4))
    broken, good = Broken(0.3), SlowFake(0)
    summary = within(60, lambda: Pipeline([Lane(broken, 1), Lane(good, 1)]).run(jobs))
    assert summary.ok == 1 and good.count == 1


def test_a_picture_that_fails_in_words_is_not_handed_to_another_device(tmp_path, warnings):
    # A picture at fault is no device's: each device goes on.
    class Refusing(SlowFake):
        device = fake_gpu()

        def upscale(self, image, progress=None, **kw):
            self.count += 1
            raise InputError("a picture no device can take")

    jobs = folder_of(tmp_path, 4, size=(4, 4))
    refusing, good = Refusing(0), SlowFake(0.05)
    summary = Pipeline([Lane(refusing, 1), Lane(good, 1)]).run(jobs)
    assert summary.ok + summary.failed == 4 and summary.failed == refusing.count >= 2
    assert all(f.message == f"{f.job.source}: a picture no device can take" for f in summary.failures)
    assert not summary.lost and not warnings


class Picky(SlowFake):
    """Fails a 5x5 picture in an unforeseen way, as a bug in the code would."""

    def __init__(self, device, delay=0.02):
        super().__init__(delay)
        self.device = device

    def upscale(self, image, progress=None, **kw):
        if image.shape[:2] == (5, 5):
            time.sleep(self.delay)
            raise ValueError("odd picture")
        return super().upscale(image)


# The first device was out for the rest of the run, which went on at half speed. Two
# lanes on one device (-g -1,-1) are named apart: the lines read "CPU takes pictures
# again: p failed on CPU too" and "upscaling failed on CPU, then on CPU".
@pytest.mark.parametrize("devices, names", [((fake_gpu, lambda: CPU), ("GPU 0 (fake)", "CPU")),
                                            ((lambda: CPU, lambda: CPU), ("CPU lane 1", "CPU lane 2"))])
def test_a_picture_that_fails_on_two_devices_fails_alone_and_both_devices_go_on(devices, names, tmp_path, warnings):
    jobs = folder_of(tmp_path, 12, size=(4, 4))
    Image.fromarray(picture(5, 5)).save(jobs[0].source)
    one, two = (Picky(make()) for make in devices)
    summary = within(60, lambda: Pipeline([Lane(one, 1), Lane(two, 1)]).run(jobs))
    assert (summary.ok, summary.failed, summary.stopped, summary.lost) == (11, 1, None, [])
    first, second = names if warnings[0].startswith(names[0]) else names[::-1]
    assert summary.failures[0].message == (f"{jobs[0].source}: upscaling failed on {first}, then on {second}: "
                                           "ValueError('odd picture')")
    assert warnings == [f"{first} failed (ValueError('odd picture')): it takes no more pictures, the other devices "
                        "go on",
                        f"{first} takes pictures again: {jobs[0].source} failed on {second} too, so the picture was "
                        "more likely at fault"]
    assert one.count >= 2 and two.count >= 2  # the later pictures spread over both again


def test_a_lost_lane_sharing_its_device_is_named_as_that_lane(tmp_path, warnings):
    jobs = folder_of(tmp_path, 6, size=(4, 4))
    gpu = fake_gpu()
    good, broken = SlowFake(0.02), Broken(device=gpu)
    good.device = gpu
    summary = within(60, lambda: Pipeline([Lane(good, 1), Lane(broken, 1)]).run(jobs))
    assert (summary.ok, summary.failed, summary.stopped) == (6, 0, None)
    assert summary.lost == ["GPU 0 (fake) lane 2: RuntimeError('vkQueueSubmit failed')"]
    assert warnings == ["GPU 0 (fake) lane 2 failed (RuntimeError('vkQueueSubmit failed')): it takes no more "
                        "pictures, the other devices go on"]


def test_ordered_map_names_two_lanes_on_one_device_apart(warnings):
    frames = [np.zeros((2, 2, 3), np.uint8)] * 40
    broken = [Lane(Broken(0.01, CPU), 1) for _ in range(2)]

    def drain():
        with pytest.raises(UpscalingFailed) as failed:
            list(ordered_map(broken, frames, lambda up, frame: up.upscale(frame), window=4))
        return failed.value
    failed = within(60, drain)
    first = "CPU lane 1" if failed.upscalers[0] is broken[0].upscaler else "CPU lane 2"
    second = {"CPU lane 1": "CPU lane 2", "CPU lane 2": "CPU lane 1"}[first]
    assert str(failed) == f"upscaling failed on {first}, then on {second}: RuntimeError('vkQueueSubmit failed')"
    assert str(failed.about("a.mp4")) == f"a.mp4: {failed}"
    assert warnings == [f"{first} failed (RuntimeError('vkQueueSubmit failed')): it takes no more frames, the other "
                        "devices go on"]


def test_a_lost_device_stays_out_though_a_picture_it_failed_was_at_fault(tmp_path):
    # Back in service once its bad picture failed elsewhere too, it fails its next one:
    # out for good, that picture done elsewhere.
    jobs = folder_of(tmp_path, 10, size=(4, 4))
    Image.fromarray(picture(5, 5)).save(jobs[1].source)
    broken, picky = Broken(), Picky(CPU)
    summary = within(60, lambda: Pipeline([Lane(broken, 1), Lane(picky, 1)]).run(jobs))
    assert (summary.ok, summary.failed, summary.stopped) == (9, 1, None)
    assert summary.lost == ["GPU 0 (fake): RuntimeError('vkQueueSubmit failed')"]
    assert picky.count == 9 and broken.count <= 3


def judging(count):
    """A pipeline of ``count`` Picky devices of one worker each, to call _judge on as a
    run would, and its pictures by name."""
    from ncnn_sr.outcomes import Summary
    from ncnn_sr.loading import Item
    ups = [Picky(fake_gpu(i)) for i in range(count)]
    p = Pipeline([Lane(up, 1) for up in ups])
    p._summary = Summary()
    return p, ups, lambda name: Item(SimpleNamespace(source=name), Path(name))


def test_a_picture_failed_on_two_lost_devices_of_three_goes_to_the_third(warnings):
    # It was found at fault and failed, the third device never tried, and the first
    # came back.
    p, (a, b, c), item = judging(3)
    picture = item("p.png")
    for up in (a, b):
        p._judge(up, picture, RuntimeError("vkQueueSubmit failed"))
        assert picture.again
    assert p._down == {id(a), id(b)} and not p._out
    assert p._summary.lost == ["GPU 0 (fake): RuntimeError('vkQueueSubmit failed')",
                               "GPU 1 (fake): RuntimeError('vkQueueSubmit failed')"]
    assert not any("again" in line for line in warnings)


def test_a_lost_device_back_for_a_bad_pictures_sake_goes_out_once_a_good_one_it_failed_is_done(warnings):
    # a, lost, fails p and, on its other worker, the bad q; q fails on b too, and a
    # comes back for q's sake. p, done on b then, left a in service to the end of the
    # run, out of Summary.lost: it was out for good only if out of service still.
    p, (a, b), item = judging(2)
    lost = RuntimeError("vkQueueSubmit failed")
    good, bad = item("p.png"), item("q.png")
    p._judge(a, good, lost)
    p._judge(a, bad, lost)
    p._judge(b, bad, ValueError("odd picture"))
    assert good.again and not bad.again and not p._down  # a is back
    good.pixels = picture(4, 4)
    p._upscale(b, good, None)
    assert p._down == p._out == {id(a)}
    assert p._summary.lost == ["GPU 0 (fake): RuntimeError('vkQueueSubmit failed')"]
    assert warnings[-1] == "GPU 0 (fake) takes no more pictures: p.png, which it failed, was done on GPU 1 (fake)"


def test_a_device_going_out_for_good_as_the_last_in_service_brings_back_the_one_out_for_now(warnings):
    # As above, a back for q's sake; b, out for now for r while p is done on it, is
    # then the only one left: taking a out too stopped the run, every device failed.
    p, (a, b), item = judging(2)
    lost, odd = RuntimeError("vkQueueSubmit failed"), ValueError("odd picture")
    good, bad, waiting = item("p.png"), item("q.png"), item("r.png")
    p._judge(a, good, lost)
    p._judge(a, bad, lost)
    p._judge(b, bad, odd)
    p._judge(b, waiting, odd)
    assert p._down == {id(b)} and waiting.again
    good.pixels = picture(4, 4)
    p._upscale(b, good, None)
    assert p._down == p._out == {id(a)} and not p._halt.is_set() and p._summary.stopped is None
    assert p._summary.lost == ["GPU 0 (fake): RuntimeError('vkQueueSubmit failed')"]
    assert warnings[-1] == "GPU 1 (fake) takes pictures again: no other device was left in service"


@pytest.mark.parametrize("count", [3, 4])
def test_bad_pictures_in_a_row_fail_on_every_device_and_take_none_out(count, warnings):
    p, ups, item = judging(count)
    error = ValueError("odd picture")
    for name in ("p.png", "q.png"):
        picture = item(name)
        for up in ups:
            p._judge(up, picture, error)
        assert not picture.again
        assert p._down == p._out == set() and p._summary.lost == []
    assert warnings[-1] == f"GPU {count - 2} (fake) takes pictures again: q.png failed on GPU {count - 1} (fake) " \
                           "too, so the picture was more likely at fault"


def test_the_last_device_in_service_goes_for_a_picture_one_out_of_service_has_not_had(warnings):
    # a fails q, out of service while q goes to b; b then fails p, which a has not had:
    # p failed, though a may well have done it.
    p, (a, b), item = judging(2)
    error = ValueError("odd picture")
    p._judge(a, item("q.png"), error)
    picture = item("p.png")
    p._judge(b, picture, error)
    assert picture.again and p._down == {id(b)} and not p._out
    assert p._summary.lost == ["GPU 1 (fake): ValueError('odd picture')"]
    assert warnings[-1] == "GPU 0 (fake) takes pictures again: GPU 1 (fake), the last device in service, failed " \
                           "p.png, which the others have not had"


def test_a_picture_failed_on_every_device_that_stops_the_run_still_reaches_the_savers(warnings):
    # One picture found at fault too many in a row takes every device out, halting the
    # run; its outcome, given up on behind a full save queue, was never reported.
    import queue

    from ncnn_sr.workers import STOP, ProcQueue
    p, (a, b), item = judging(2)
    picture = item("p.png")
    picture.failed_on, picture.failure = [a, b], ValueError("odd picture")
    p._at_fault_in_row = p._proc_workers
    to_proc = ProcQueue(4)
    to_proc.put(picture)
    to_proc.put(STOP)

    class FullAtFirst(queue.Queue):
        def put(self, item, block=True, timeout=None):
            self.tries = getattr(self, "tries", 0) + 1
            if self.tries == 1:
                raise queue.Full
            super().put(item, block, timeout)

    to_save = FullAtFirst()
    p._proc(a, to_proc, to_save)
    assert p._halt.is_set() and p._summary.devices_failed
    assert to_save.get_nowait() is picture
    assert picture.error == "p.png: upscaling failed on GPU 0 (fake), then on GPU 1 (fake): ValueError('odd picture')"


def test_a_picture_every_worker_passes_over_is_taken_once_none_is_in_work():
    # Each waits for a device out of service for the other's sake: taken while another
    # picture was in work, it could have waited for that one; never taken, the run hung.
    from ncnn_sr.workers import ProcQueue
    q = ProcQueue(4)
    q.put("other")
    q.put("waiting")
    assert q.get(True) == "other"
    got = []
    taker = threading.Thread(target=lambda: got.append(q.get(True, takes=lambda item, stuck: stuck)))
    taker.start()
    taker.join(0.2)
    assert not got  # "other" is in work
    q.done()
    taker.join(10)
    assert got == ["waiting"]


def test_a_picture_waiting_for_a_device_that_goes_out_for_good_fails_without_waiting_for_the_rest():
    # q, done on a, takes c out for good; p, waiting for c, had failed on a and b, the
    # two in service. b's idle worker was not woken to fail it: p waited until no
    # picture was in work, behind whatever the others were doing.
    import queue

    from ncnn_sr.workers import STOP, ProcQueue
    p, (a, b, c), item = judging(3)
    error = RuntimeError("vkQueueSubmit failed")
    waiting, done_elsewhere = item("p.png"), item("q.png")
    p._judge(a, waiting, error)
    p._judge(b, waiting, error)
    p._judge(c, done_elsewhere, error)  # the last in service: a and b come back
    assert p._down == {id(c)} and not p._out
    to_proc, to_save = ProcQueue(4), queue.Queue()
    p._wake_procs = to_proc.wake
    to_proc.put(done_elsewhere)
    assert to_proc.get(True) is done_elsewhere  # a's worker has it
    to_proc.retry(waiting)
    # Told when b's worker waits, having passed over p (c may yet have it).
    idle, wait = threading.Event(), to_proc._not_empty.wait
    to_proc._not_empty.wait = lambda timeout=None: (idle.set(), wait(timeout))[1]
    worker = threading.Thread(target=p._proc, args=(b, to_proc, to_save))
    worker.start()
    try:
        assert idle.wait(10)
        done_elsewhere.pixels = picture(4, 4)
        p._upscale(a, done_elsewhere, to_proc)
        assert p._out == {id(c)}
        assert to_save.get(timeout=10) is waiting  # failed while q is still in work
        assert waiting.error == ("p.png: upscaling failed on GPU 0 (fake), then on GPU 1 (fake): "
                                 "RuntimeError('vkQueueSubmit failed')")
    finally:
        p._halt.set()
        to_proc.done()
        to_proc.put(STOP)
        worker.join(10)
    assert not worker.is_alive()


def test_a_picture_waiting_for_a_device_out_for_now_is_not_failed_before_every_worker_has_looked():
    # a and b, lost, fail p; d fails the bad q as the last in service, so a and b come
    # back, and p waits for d. With nothing in work, a's worker found the queue stuck
    # and failed p, though b's worker had not looked yet: it would take q, fail it too,
    # and so bring d back for p. A good picture failed, a sound device waiting for it.
    import queue

    from ncnn_sr.workers import STOP, ProcQueue
    p, (a, b, d), item = judging(3)
    lost = RuntimeError("vkQueueSubmit failed")
    good, bad = item("p.png"), item("q.png")
    p._judge(a, good, lost)
    p._judge(a, bad, lost)
    p._judge(b, good, lost)
    p._judge(d, bad, ValueError("odd picture"))
    assert p._down == {id(d)} and good.again and bad.again
    good.pixels, bad.pixels = picture(4, 4), picture(5, 5)
    to_proc, to_save = ProcQueue(4, workers=3), queue.Queue()
    p._wake_procs = to_proc.wake
    to_proc.put(good)
    to_proc.put(bad)
    idle, wait = threading.Event(), to_proc._not_empty.wait
    to_proc._not_empty.wait = lambda timeout=None: (idle.set(), wait(timeout))[1]
    workers = [threading.Thread(target=p._proc, args=(a, to_proc, to_save))]
    workers[0].start()
    try:
        assert idle.wait(10)
        assert to_save.empty()  # b's worker may yet move on
        for up in (b, d):
            workers.append(threading.Thread(target=p._proc, args=(up, to_proc, to_save)))
            workers[-1].start()
        said = {to_save.get(timeout=10).job.source: None for _ in range(2)}
        assert set(said) == {"p.png", "q.png"}
        assert good.error == "" and bad.error.startswith("q.png: upscaling failed on GPU 0 (fake), then on GPU 2 (fake), then on GPU 1")
        assert p._out == {id(a), id(b)}
    finally:
        p._halt.set()
        for _ in workers:
            to_proc.put(STOP)
        for worker in workers:
            worker.join(10)
    assert not any(worker.is_alive() for worker in workers)


@pytest.mark.parametrize("count, lost", [(3, 2), (4, 2), (4, 3)])
def test_good_pictures_failed_on_lost_devices_are_done_on_a_sound_one(count, lost, tmp_path):
    jobs = folder_of(tmp_path, 8, size=(4, 4))
    ups = [Broken(0, fake_gpu(i)) if i < lost else Picky(fake_gpu(i)) for i in range(count)]
    summary = within(60, lambda: Pipeline([Lane(up, 1) for up in ups]).run(jobs))
    assert (summary.ok, summary.failed, summary.stopped) == (8, 0, None)
    assert sorted(summary.lost) == [f"GPU {i} (fake): RuntimeError('vkQueueSubmit failed')" for i in range(lost)]
    assert all(up.count == 1 for up in ups[:lost])  # out for good once a picture it failed was done elsewhere


@pytest.mark.parametrize("count", [3, 4])
@pytest.mark.parametrize("bad", [1, 2])
def test_bad_pictures_fail_on_every_device_in_service_and_each_goes_on(count, bad, tmp_path):
    jobs = folder_of(tmp_path, 12, size=(4, 4))
    for job in jobs[:bad]:
        Image.fromarray(picture(5, 5)).save(job.source)
    ups = [Picky(fake_gpu(i)) for i in range(count)]
    summary = within(60, lambda: Pipeline([Lane(up, 1) for up in ups]).run(jobs))
    assert (summary.ok, summary.failed, summary.stopped, summary.lost) == (12 - bad, bad, None, [])
    if bad == 1:  # another's devices out of service for it are not waited for
        assert summary.failures[0].message.count(", then on ") == count - 1
    assert sum(up.count for up in ups) == 12 - bad


@pytest.mark.parametrize("broken", [0, 1, 2, 3])
def test_many_pictures_and_workers_with_bad_pictures_and_lost_devices_end(broken, tmp_path):
    jobs = folder_of(tmp_path, 40, size=(4, 4))
    for job in jobs[3::7]:
        Image.fromarray(picture(5, 5)).save(job.source)
    ups = [Broken(0.002, fake_gpu(i)) if i < broken else Picky(fake_gpu(i), 0.002) for i in range(3)]
    summary = within(60, lambda: Pipeline([Lane(up, 3) for up in ups], queue_size=4).run(jobs))
    if broken == 3:
        assert summary.devices_failed and summary.ok == 0 and summary.done < len(jobs)
    else:
        assert (summary.ok, summary.failed, summary.stopped) == (34, 6, None)
        assert len(summary.lost) == broken


def test_a_cancel_while_a_device_is_out_of_service_ends_the_run(tmp_path):
    # Its workers wait to be back: the cancel wakes them to drop what is left.
    jobs = folder_of(tmp_path, 30, size=(4, 4))
    p = Pipeline([Lane(Broken(), 3), Lane(SlowFake(0.02), 1)],
                 on_outcome=lambda outcome: p.cancel() if outcome.status == "ok" else None)
    summary = within(60, lambda: p.run(jobs))
    assert summary.cancelled and 1 <= summary.ok < 30 and not summary.abandoned


def test_a_pipeline_not_run_yet_has_not_stopped():
    # ``stopped`` read the summary of a run, which a new Pipeline has not: AttributeError.
    assert Pipeline([Lane(SlowFake(0), 1)]).stopped is None


def test_a_picture_upscaled_as_the_last_device_fails_waits_for_room_to_be_written():
    # Once every device has failed no picture starts, but those upscaled are written:
    # one that met a full save queue then was dropped at once, neither written nor counted.
    import queue

    from ncnn_sr.outcomes import Summary
    from ncnn_sr.loading import Item

    class FullAtFirst:
        def __init__(self):
            self.items, self.tries = [], 0

        def put(self, item, timeout=None):
            self.tries += 1
            if self.tries == 1:
                raise queue.Full
            self.items.append(item)

    up = SlowFake(0)
    p = Pipeline([Lane(up, 1)])
    p._summary = Summary()
    item = Item(SimpleNamespace(source="a.png"), Path("a.png"), pixels=picture(4, 4))
    to_save = FullAtFirst()
    p._halt.set()  # the other device's worker, meanwhile
    p._proc_one(up, item, None, to_save)
    assert to_save.items == [item] and up.count == 1


def test_once_every_device_has_failed_the_run_stops(tmp_path, warnings):
    jobs = folder_of(tmp_path, 20, size=(4, 4))
    lanes = [Lane(Broken(0.02), 1), Lane(Broken(0.02, fake_gpu(1)), 1)]
    summary = within(60, lambda: Pipeline(lanes).run(jobs))
    assert summary.devices_failed and summary.stopped == "every device failed (GPU 0 (fake), GPU 1 (fake))"
    assert summary.ok == 0 and 1 <= summary.failed and summary.done < len(jobs) and not summary.cancelled
    assert len(summary.lost) == 2 and warnings[-1].endswith("no device is left")


@pytest.mark.parametrize("name, said", [
    ("wide.webp", "wide.webp: 16400x4 is too large for WebP, which holds at most 16383 pixels a side; write png"),
    # Pipeline's own argument leaves it out, not the command's --no-metadata.
    ("wide.jpg", "wide.jpg: its EXIF (70034 bytes) is too large for JPEG, which holds at most 65533: write png or "
                 "webp, or leave the metadata out (metadata=False)"),
])
def test_an_output_its_format_cannot_hold_fails_before_it_is_upscaled(name, said, tmp_path):
    # It was upscaled (hours for a large photo on the CPU), then refused by the writer.
    src = tmp_path / "wide.png"
    im = Image.fromarray(picture(2, 8200))
    exif = im.getexif()
    exif[0x010E] = "x" * 70000  # ImageDescription: an EXIF over JPEG's 64 KB
    im.save(src, exif=exif)
    up = Upscaler(MODEL, device=-1, threads=1)
    calls = []
    real = up.upscale
    up.upscale = lambda image, **kw: calls.append(1) or real(image, **kw)
    try:
        summary = Pipeline([Lane(up, 1)]).run([Job(src, tmp_path / name)])
    finally:
        up.close()
    assert summary.failed == 1 and said in summary.failures[0].message
    assert calls == [] and not (tmp_path / name).exists()


@pytest.mark.parametrize("flags, hint", [(None, "(metadata=False)"), (FlagNames(), "(--no-metadata)"),
                                         (FlagNames("ncnn-sr"), "('ncnn-sr --no-metadata')")])
def test_a_hint_names_the_option_as_the_flags_given_name_it(flags, hint, tmp_path):
    # The library names its argument; a command, through its FlagNames, the flag its user has.
    im = Image.fromarray(picture(4, 4))
    exif = im.getexif()
    exif[0x010E] = "x" * 70000  # ImageDescription: an EXIF over JPEG's 64 KB
    im.save(tmp_path / "a.png", exif=exif)
    up = Upscaler(MODEL, device=-1, threads=1)
    try:
        summary = Pipeline([Lane(up, 1)], flags=flags).run([Job(tmp_path / "a.png", tmp_path / "a.jpg")])
    finally:
        up.close()
    assert summary.failures[0].message.endswith(f"write png or webp, or leave the metadata out {hint}")
    assert not (tmp_path / "a.jpg").exists()


def test_an_output_where_a_folder_is_fails_before_it_is_upscaled(tmp_path):
    # Upscaled first, then "cannot write out/a.png: a folder of that name is there".
    Image.fromarray(picture(8, 8)).save(tmp_path / "a.png")
    (tmp_path / "out" / "a.png").mkdir(parents=True)
    up = Upscaler(MODEL, device=-1, threads=1)
    calls = []
    real = up.upscale
    up.upscale = lambda image, **kw: calls.append(1) or real(image, **kw)
    try:
        summary = Pipeline([Lane(up, 1)]).run([Job(tmp_path / "a.png", tmp_path / "out" / "a.png")])
    finally:
        up.close()
    assert summary.failed == 1 and calls == []
    assert summary.failures[0].message == f"cannot write {tmp_path / 'out' / 'a.png'}: a folder of that name is there"


@pytest.mark.parametrize("settings, said", [
    ({"lanes": []}, "a pipeline needs at least one lane"),
    ({"load_workers": 0}, "load_workers must be a whole number, at least 1, got 0"),
    ({"load_workers": "2"}, "load_workers must be a whole number, at least 1, got '2'"),  # a bare TypeError
    ({"save_workers": 1.5}, "save_workers must be a whole number, at least 1, got 1.5"),  # failed in run
    ({"queue_size": True}, "queue_size must be a whole number, at least 1, got True"),
    ({"lanes": "upscaler"}, "a pipeline's lanes must be Lanes (an Upscaler and its proc workers), got 'upscaler'"),
    # A truthy "no" skipped every existing output, or kept the metadata asked away.
    ({"skip_existing": "no"}, "skip_existing must be True or False, got 'no'"),
    ({"metadata": "no"}, "metadata must be True or False, got 'no'"),
    ({"animate": None}, "animate must be True or False, got None"),
    ({"keep_opaque_alpha": 1}, "keep_opaque_alpha must be True or False, got 1"),
    ({"drop_oversized_exif": "yes"}, "drop_oversized_exif must be True or False, got 'yes'"),
    ({"skip_damaged": "no"}, "skip_damaged must be True or False, got 'no'"),
    # Called for the first outcome, a TypeError raised once every picture was done.
    ({"on_outcome": "print"}, "on_outcome must be a function of an Outcome, or None, got 'print'"),
    # A TypeError from a worker at the first animation.
    ({"animation_memory": "4e9"}, "animation_memory must be a whole number of bytes, at least 1, or None, got '4e9'"),
    ({"animation_memory": 0}, "animation_memory must be a whole number of bytes, at least 1, or None, got 0"),
    # found by a library audit: these were InputErrors alone, which an except ValueError missed.
    ({"scale": -1}, "scale must be a positive number, got -1"),
    ({"width": "3"}, "width must be a whole number of pixels, got '3'"),
    ({"quality": 500}, "quality must be a whole number from 1 to 100, got 500"),
])
def test_settings_a_pipeline_cannot_run_with_are_input_errors_and_value_errors(settings, said, cpu_lane):
    # They were ValueErrors (or TypeErrors, or an AttributeError in run) where the
    # library's other refusals, a Pipeline's scale or quality too, are InputErrors;
    # still ValueErrors, for code written against them.
    settings = {"lanes": [cpu_lane], **settings}
    if settings["lanes"] == "upscaler":
        settings["lanes"] = [cpu_lane.upscaler]
        said = said.replace("'upscaler'", describe(cpu_lane.upscaler))
    with pytest.raises(InputError) as refused:
        Pipeline(**settings)
    assert str(refused.value) == said and isinstance(refused.value, ValueError)


@pytest.mark.parametrize("name", ["load_workers", "save_workers", "queue_size", "metadata", "skip_existing",
                                  "keep_opaque_alpha", "drop_oversized_exif", "animate", "animation_memory"])
def test_an_array_given_as_a_pipelines_setting_is_named_by_its_type(name, cpu_lane):
    # found by a library audit: its repr was printed whole, over many lines
    with pytest.raises(SettingError) as refused:
        Pipeline([cpu_lane], **{name: np.zeros((2, 2))})
    assert str(refused.value).endswith("got an object of type ndarray") and "\n" not in str(refused.value)


@pytest.mark.parametrize("jobs, got", [
    (None, "None"), ("in.png", "'in.png'"), (["in.png"], "'in.png'"), ([("in.png", "o.png")], "('in.png', 'o.png')"),
])
def test_jobs_that_are_no_jobs_are_an_input_error(jobs, got, cpu_lane):
    # A path, or a list of paths, was an AttributeError from a worker thread ("'str'
    # object has no attribute 'target'"); None a bare TypeError.
    with pytest.raises(InputError) as refused:
        Pipeline([cpu_lane]).run(jobs)
    assert str(refused.value) == f"jobs must be Jobs, as plan_jobs gives them, got {got}"


@pytest.mark.parametrize("name", ["lanes", "load_workers", "save_workers"])
def test_a_pipelines_settings_are_fixed_when_it_is_made(name, cpu_lane):
    # found by a check of the library's faults, as an Upscaler's: p.load_workers = "2"
    # was a bare TypeError in the next run, and lanes set later left the count of proc
    # workers and the devices failing over those of the lanes it was made with.
    p = Pipeline([cpu_lane], load_workers=2)
    before = getattr(p, name)
    with pytest.raises(AttributeError) as refused:
        setattr(p, name, before)
    assert str(refused.value) == f"this Pipeline's {name} is fixed when it is made: make another with {name}="
    assert getattr(p, name) == before and p.load_workers == 2 and p.lanes == (cpu_lane,)
    # del was an AttributeError whose whole message was "__delete__" (a library audit)
    with pytest.raises(AttributeError) as refused:
        delattr(p, name)
    assert str(refused.value) == f"this Pipeline's {name} is fixed when it is made: make another with {name}="
    assert getattr(p, name) == before


@pytest.mark.parametrize("name", ["scale", "width", "quality", "metadata", "skip_existing", "on_outcome",
                                  "animation_memory"])
def test_a_pipelines_other_arguments_set_later_are_refused_not_taken_without_effect(name, cpu_lane):
    # found by a check of the README's claims: p.scale = 2 made an attribute nothing
    # reads, and the next run upscaled at the scale it was made with, without a word
    p = Pipeline([cpu_lane])
    with pytest.raises(AttributeError) as refused:
        setattr(p, name, 2)
    assert str(refused.value) == f"this Pipeline's {name} is fixed when it is made: make another with {name}="
    assert name not in vars(p)


@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
def test_a_pipeline_is_refused_copied_or_pickled_in_its_own_words(how, cpu_lane):
    # found by a library audit: copy.copy(p) shared the original's cancel, halt and
    # run lock but not its "running" flag, so the copy ran beside the original,
    # each run cleared the other's cancel and a cancel() of one stopped both; a
    # deepcopy or pickle was refused in the words of the Upscaler in its lanes.
    import copy
    import pickle
    p = Pipeline([cpu_lane])
    with pytest.raises(InputError) as refused:
        {"copy": copy.copy, "deepcopy": copy.deepcopy, "pickle": pickle.dumps}[how](p)
    assert str(refused.value) == ("a Pipeline cannot be copied or pickled: its runs share one cancel and its "
                                  "lanes hold networks loaded on devices; make another with the same lanes, "
                                  "or one per process")


def test_a_pipelines_repr_names_its_lanes_and_the_settings_it_was_given(cpu_lane):
    # found by a library audit: it was <ncnn_sr.pipeline.Pipeline object at 0x7f...>,
    # no help in a log line or a debugger
    lane = repr(cpu_lane)
    assert repr(Pipeline([cpu_lane])) == f"<Pipeline lanes=[{lane}] load_workers=1 save_workers=2>"
    p = Pipeline([cpu_lane, cpu_lane], save_workers=3, width=50, quality=90, metadata=False, skip_existing=True)
    assert repr(p) == (f"<Pipeline lanes=[{lane}, {lane}] load_workers=1 save_workers=3 width=50 quality=90 "
                       "metadata=False skip_existing=True>")


def test_a_pipelines_stopped_set_says_what_to_do_instead(cpu_lane):
    # found by a check of the library's faults, as an Upscaler's scale: p.stopped = "x"
    # was Python's own "property 'stopped' of 'Pipeline' object has no setter".
    p = Pipeline([cpu_lane])
    with pytest.raises(AttributeError) as refused:
        p.stopped = "disk full"
    assert str(refused.value) == "this Pipeline's stopped is its run's to say: cancel() stops a run"
    assert p.stopped is None and "stopped" not in vars(p)


@pytest.mark.parametrize("name, said", [
    ("quallity", "this Pipeline has no setting 'quallity': did you mean 'quality'?"),
    ("Metadata", "this Pipeline has no setting 'Metadata': did you mean 'metadata'?"),
    ("load_worker", "this Pipeline has no setting 'load_worker': did you mean 'load_workers'?"),
    ("on_outcomes", "this Pipeline has no setting 'on_outcomes': did you mean 'on_outcome'?"),
    ("tiles", "this Pipeline has no setting 'tiles' (none of its settings may be set once it is made)")])
def test_a_pipelines_setting_it_does_not_have_is_refused_with_the_one_meant(name, said, cpu_lane):
    # found by a check of the library's settings, as an Upscaler's: p.quallity = 90 (or
    # p.tiles = 64) made an attribute nothing reads, and the next run went on with the
    # settings it was made with, without a word.
    p = Pipeline([cpu_lane])
    with pytest.raises(AttributeError) as refused:
        setattr(p, name, 64)
    assert str(refused.value) == said and name not in vars(p)


def test_a_pipelines_private_names_and_a_subclasss_own_may_still_be_set(tmp_path, cpu_lane):
    class Labelled(Pipeline):
        label = None  # declared here: a subclass's own settings
        note: str

        @property
        def shown(self) -> str:
            return self._shown

        @shown.setter
        def shown(self, value: str) -> None:
            self._shown = value

    p = Labelled([cpu_lane])
    p.label, p.note, p.shown, p._cache = "a", "b", "c", {}
    assert (p.label, p.note, p.shown, p._cache) == ("a", "b", "c", {})
    p._on_outcome = None  # as the tests here set its private names
    run = p.run
    p.run = lambda jobs: run(jobs)  # a method replaced, as tests and wrappers do
    Image.fromarray(picture(8, 8)).save(tmp_path / "a.png")
    assert p.run([Job(tmp_path / "a.png", tmp_path / "b.png")]).ok == 1
    with pytest.raises(AttributeError, match="^this Labelled has no setting 'labels': did you mean 'label'\\?$"):
        p.labels = "x"


def test_a_none_among_the_jobs_is_refused_not_taken_for_their_end(tmp_path, cpu_lane):
    # found by a check of the library's faults: None ended the jobs, so run([None, job])
    # upscaled nothing and said ok=0, failed=0, the job after it lost without a word.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    with pytest.raises(SettingError) as refused:
        Pipeline([cpu_lane]).run([None, Job(tmp_path / "in.png", tmp_path / "out.png")])
    assert str(refused.value) == "jobs must be Jobs, as plan_jobs gives them, got None"


def test_a_plan_given_as_the_jobs_is_refused_naming_its_jobs(tmp_path, cpu_lane):
    # found by a library audit: Pipeline.run(plan_jobs(...)) said "jobs must be Jobs, as
    # plan_jobs gives them, got an object of type Plan": plan_jobs had given just that
    from ncnn_sr.jobs import plan_jobs
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "in.png")
    with pytest.raises(InputError) as refused:
        Pipeline([cpu_lane]).run(plan_jobs(tmp_path / "in.png", tmp_path / "out.png"))
    assert str(refused.value) == "jobs must be Jobs, got a Plan: give its jobs, plan_jobs(...).jobs"
    assert not (tmp_path / "out.png").exists()


def test_ordered_map_cancelled_from_outside_ends_with_cancelled():
    # Its workers stopped at the cancel, leaving the item the generator waited for
    # undone, and the generator waited for it for ever.
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(20)]
    cancel, got = threading.Event(), []

    def work(up, frame):
        if frame[0, 0, 0] == 5:
            cancel.set()  # as a caller's stop button would, from any thread
        return up.upscale(frame)

    def consume():
        for result in ordered_map([Lane(SlowFake(0), 1)], frames, work, window=4, cancel=cancel):
            got.append(int(result[0, 0, 0]))
    with pytest.raises(workers_mod.Cancelled):
        within(30, consume)
    assert got == list(range(len(got))) and len(got) <= 6


def test_ordered_map_cancelled_before_it_starts_ends_with_cancelled_not_as_if_the_items_ran_out():
    # found by a check of the README's claims: the feeder, stopped by the cancel with
    # an item taken, counted the items it had handed on as all there were, and the
    # generator ended without a word, as if no frame had come (0 of 3 in most runs)
    frames = [np.zeros((2, 2, 3), np.uint8)] * 3
    for _ in range(20):
        cancel = threading.Event()
        cancel.set()
        with pytest.raises(workers_mod.Cancelled):
            within(30, lambda: list(ordered_map([Lane(SlowFake(0), 1)], frames, lambda up, f: up.upscale(f),
                                                cancel=cancel)))


def test_a_ctrl_c_out_of_a_worker_s_start_in_ordered_map_still_stops_its_threads(monkeypatch):
    # Thread.start waits for the thread to run, and a Ctrl-C can come out of that wait
    # with it running: before the try that sets the cancel, the feeder took the video's
    # frames on for ever, as the caller closed the file under it.
    from ncnn_sr import lanes as lanes_mod

    def frames():
        while True:
            yield np.zeros((2, 2, 3), np.uint8)
    made, cancel = [], threading.Event()

    class CtrlCAtSecondStart(workers_mod.Worker):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)
            if len(made) == 2:
                raise KeyboardInterrupt
    monkeypatch.setattr(lanes_mod, "Worker", CtrlCAtSecondStart)
    with pytest.raises(KeyboardInterrupt):
        next(ordered_map([Lane(SlowFake(0), 1)], frames(), lambda up, frame: up.upscale(frame), cancel=cancel))
    assert cancel.is_set()
    assert all(w.done.wait(30) for w in made), "a worker went on after the Ctrl-C"


@pytest.mark.parametrize("where", ["items", "work"])
def test_ordered_maps_failure_is_freed_once_dropped(where):
    # It was held in a cycle through its traceback (the consumer's frame, or the
    # worker's, kept it in a local), and with it the frames it ran through, a video's
    # decoding, until a full collection: in a folder of videos, each failed one's.
    def items():
        for i in range(6):
            if where == "items" and i == 3:
                raise InputError("a damaged frame")
            yield np.full((2, 2, 3), i, np.uint8)

    def work(up, frame):
        if where == "work" and frame[0, 0, 0] == 3:
            raise InputError("a damaged frame")
        return up.upscale(frame)

    gc.collect()
    gc.disable()  # what a cycle holds stays, as it does between collections
    try:
        with pytest.raises(InputError, match="a damaged frame") as raised:
            list(ordered_map([Lane(SlowFake(0), 1)], items(), work))
        error = weakref.ref(raised.value)
        del raised
        for _ in range(3000):  # a bound against a hang: 1 s could pass on a loaded machine
            if error() is None:
                break
            time.sleep(0.01)  # the worker threads' own end
        assert error() is None
    finally:
        gc.enable()


def test_ordered_map_hands_the_items_of_a_device_that_fails_to_another(warnings):
    # A video with -g 0,-1 failed whole on one Vulkan error, minutes into its frames.
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(30)]
    broken, good = Broken(), SlowFake(0.005)
    results = within(60, lambda: list(ordered_map([Lane(broken, 2), Lane(good, 1)], frames,
                                                  lambda up, frame: up.upscale(frame))))
    assert [int(result[0, 0, 0]) for result in results] == list(range(30))
    assert good.count == 30 and 1 <= broken.count <= 2
    assert warnings == ["GPU 0 (fake) failed (RuntimeError('vkQueueSubmit failed')): it takes no more frames, "
                        "the other devices go on"]


def test_ordered_map_hands_an_item_failed_on_two_lost_devices_of_three_to_the_third(warnings):
    # Failed on a second device, a frame failed the whole video, the third device sound.
    # The first two devices frame 0 meets fail it, as lost ones would: it is never
    # tried twice on one device, each being out once it fails.
    tries, lock = [], threading.Lock()

    class LosesFrameZero(SlowFake):
        def __init__(self, index):
            super().__init__(0.002)
            self.device = fake_gpu(index)

        def upscale(self, image, progress=None, **kw):
            if image[0, 0, 0] == 0:
                with lock:
                    tries.append(self)
                    if len(tries) <= 2:
                        raise RuntimeError("vkQueueSubmit failed")
            return super().upscale(image)

    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(12)]
    ups = [LosesFrameZero(i) for i in range(3)]
    results = within(60, lambda: list(ordered_map([Lane(up, 1) for up in ups], frames,
                                                  lambda up, frame: up.upscale(frame))))
    assert [int(result[0, 0, 0]) for result in results] == list(range(12))
    assert len(tries) == 3 and len(set(map(id, tries))) == 3
    lost = sorted(up.device.index for up in tries[:2])
    assert sorted(warnings) == [f"GPU {index} (fake) failed (RuntimeError('vkQueueSubmit failed')): it takes no more "
                                "frames, the other devices go on" for index in lost]


@pytest.mark.parametrize("lanes", [2, 3])
def test_ordered_map_raises_once_every_device_has_failed(lanes, warnings):
    frames = [np.zeros((2, 2, 3), np.uint8)] * 40
    broken = [Lane(Broken(0.01, fake_gpu(i)), 1) for i in range(lanes)]

    def drain():
        with pytest.raises(UpscalingFailed) as failed:
            list(ordered_map(broken, frames, lambda up, frame: up.upscale(frame), window=4))
        return failed.value
    failed = within(60, drain)
    assert sum(lane.upscaler.count for lane in broken) < 40
    # Named as a Pipeline names a picture's devices; the command's line names them so.
    assert failed.every_device and sorted(failed.devices, key=str) == [lane.upscaler.device for lane in broken]
    assert str(failed) == (f"upscaling failed on {', then on '.join(map(str, failed.devices))}: "
                           "RuntimeError('vkQueueSubmit failed')")
    assert isinstance(failed.__cause__, RuntimeError) and failed.error is failed.__cause__


def test_a_pipeline_whose_upscaler_is_closed_refuses_to_run_in_one_line(tmp_path, cpu_lane):
    # found by a library audit: the run went on, failing every picture of the folder
    # one by one on "this Upscaler is closed" (an Upscaler's with block ended first).
    jobs = folder_of(tmp_path, 3)
    with Upscaler(MODEL, device=-1, threads=1) as up:
        pass
    assert up.closed and not cpu_lane.upscaler.closed
    pipeline = Pipeline([cpu_lane, Lane(up, 1)])
    with pytest.raises(InputError) as refused:
        pipeline.run(jobs)
    assert str(refused.value) == (f"a pipeline's lane holds a closed Upscaler ({up!r}): make another, or run "
                                  "the pipeline inside its with block")
    assert not (tmp_path / "out").exists()
    assert Pipeline([cpu_lane]).run(jobs).ok == 3


def test_an_upscaling_failure_crosses_a_process_pool_naming_its_devices(cpu_lane):
    # found by a library audit: it could not be unpickled (its __init__ takes the
    # upscalers), so a multiprocessing Pool's result thread died on it and pool.map
    # waited for ever; and an Upscaler, which it held, cannot be pickled at all.
    import pickle

    def broken(up, frame):
        raise RuntimeError("vkQueueSubmit failed")
    with pytest.raises(UpscalingFailed) as failed:
        list(ordered_map([cpu_lane], [np.zeros((2, 2, 3), np.uint8)], broken))
    again = pickle.loads(pickle.dumps(failed.value))
    assert type(again) is UpscalingFailed and str(again) == str(failed.value)
    assert again.devices == failed.value.devices == [cpu_lane.upscaler.device]
    assert repr(again.error) == "RuntimeError('vkQueueSubmit failed')" and not again.every_device
    assert str(again.about("clip.mp4")) == f"clip.mp4: {failed.value}"


def test_ordered_map_keeps_a_device_that_failed_a_frame_done_elsewhere_out_for_the_maps_sharing_out(warnings):
    # A folder's videos each met the lost GPU again: each lost a frame to it, and warned.
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(12)]
    broken, good = Broken(0.002), SlowFake(0.005)
    lanes, out = [Lane(broken, 1), Lane(good, 1)], set()
    for _ in range(3):
        results = within(60, lambda: list(ordered_map(lanes, frames, lambda up, frame: up.upscale(frame), out=out)))
        assert [int(result[0, 0, 0]) for result in results] == list(range(12))
    assert out == {id(broken)} and broken.count == 1 and good.count == 36
    assert warnings == ["GPU 0 (fake) failed (RuntimeError('vkQueueSubmit failed')): it takes no more frames, "
                        "the other devices go on"]


def test_a_frame_that_fails_on_every_lane_fails_alone_and_takes_none_out_for_good(warnings):
    # It took every lane out, as lost devices, which stopped a folder of videos.
    class FailsOddFrames(SlowFake):
        def __init__(self, index):
            super().__init__(0.002)
            self.device = fake_gpu(index)

        def upscale(self, image, progress=None, **kw):
            if image.shape[:2] == (3, 3):
                raise ValueError("odd frame")
            return super().upscale(image)

    ups, out = [FailsOddFrames(0), FailsOddFrames(1)], set()
    lanes = [Lane(up, 1) for up in ups]
    frames = [np.full((3 if i == 5 else 2,) * 2 + (3,), i, np.uint8) for i in range(12)]
    with pytest.raises(UpscalingFailed) as failed:
        within(60, lambda: list(ordered_map(lanes, frames, lambda up, frame: up.upscale(frame), out=out)))
    assert failed.value.every_device and sorted(failed.value.devices, key=str) == [up.device for up in ups]
    assert out == set() and len(warnings) == 1
    counts = [up.count for up in ups]
    good = [np.full((2, 2, 3), i, np.uint8) for i in range(40)]
    assert len(within(60, lambda: list(ordered_map(lanes, good, lambda up, frame: up.upscale(frame), out=out)))) == 40
    assert out == set() and len(warnings) == 1
    assert sum(up.count for up in ups) == sum(counts) + 40


def test_ordered_map_whose_lanes_are_all_out_for_good_is_refused():
    # Else no worker took the items: the consumer waited for ever.
    up = SlowFake(0)
    with pytest.raises(InputError, match="^ordered_map's lanes are all out for good: none is left to take an item$"):
        within(10, lambda: list(ordered_map([Lane(up, 1)], [np.zeros((2, 2, 3), np.uint8)], lambda u, f: f,
                                            out={id(up)})))


@pytest.mark.parametrize("out", [[], frozenset(), {}])
def test_ordered_map_whose_out_is_not_a_set_is_refused(out):
    # A list or a frozenset was taken: the worker's first frame done failed to add to
    # it, in its thread, and the consumer waited for that frame for ever.
    up = SlowFake(0)
    with pytest.raises(SettingError, match="^ordered_map's out must be a set of the upscalers' ids out for good, "
                                           "or None, got "):
        within(10, lambda: list(ordered_map([Lane(up, 1)], [np.zeros((2, 2, 3), np.uint8)], lambda u, f: f,
                                            out=out)))


@pytest.mark.parametrize("cancel", [True, False, "stop", threading.Lock()])
def test_ordered_map_whose_cancel_is_not_an_event_is_refused(cancel):
    # True or "stop" was a bare AttributeError from the feeder thread; False was taken
    # as no cancel at all.
    up = SlowFake(0)
    with pytest.raises(SettingError) as refused:
        within(10, lambda: list(ordered_map([Lane(up, 1)], [np.zeros((2, 2, 3), np.uint8)], lambda u, f: f,
                                            cancel=cancel)))
    assert str(refused.value) == f"ordered_map's cancel must be a threading.Event, or None, got {describe(cancel)}"


def test_ordered_map_does_not_hand_on_an_item_that_fails_in_words():
    class Refusing(SlowFake):
        device = fake_gpu()

        def upscale(self, image, progress=None, **kw):
            raise InputError("a frame no device can take")

    good = SlowFake(0.05)

    def drain():
        with pytest.raises(InputError, match="a frame no device can take"):
            list(ordered_map([Lane(Refusing(0), 1), Lane(good, 1)], [np.zeros((2, 2, 3), np.uint8)] * 4,
                             lambda up, frame: up.upscale(frame)))
        return True
    assert within(60, drain)


def test_a_lane_and_ordered_map_refuse_bad_settings_as_input_errors(cpu_lane):
    with pytest.raises(InputError, match="^a lane needs a whole number of proc workers, at least 1, got 0$"):
        Lane(cpu_lane.upscaler, 0)
    with pytest.raises(InputError, match="^ordered_map needs at least one lane$") as refused:
        next(ordered_map([], [picture(4, 4)], lambda u, f: u.upscale(f)))
    assert isinstance(refused.value, ValueError)


@pytest.mark.parametrize("items, work, said", [
    (5, lambda u, f: f, "ordered_map's items must be iterable, got 5"),
    ([1], "upscale", "ordered_map's work must be a function of (upscaler, item), got 'upscale'"),
])
def test_ordered_map_refuses_items_or_work_it_cannot_use_as_a_setting_error(items, work, said, cpu_lane):
    # found by a library audit: items that were no sequence came out as a bare TypeError
    # from the feeder thread, and a work that was no function failed every item as an
    # UpscalingFailed naming the CPU, as if the device were at fault.
    with pytest.raises(ValueError) as refused:
        list(ordered_map([cpu_lane], items, work))
    assert isinstance(refused.value, InputError) and str(refused.value) == said


@pytest.mark.parametrize("user", ["pipeline", "ordered_map"])
@pytest.mark.parametrize("given, said", [
    ("lane", r"lanes must be a list of Lanes, got one Lane: give \[lane\]$"),
    ("upscaler", r"lanes must be a list of Lanes, got an Upscaler: give \[Lane\(upscaler, workers=1\)\]$"),
    (5, r"lanes must be Lanes \(an Upscaler and its proc workers\), got 5$"),
    (None, r"lanes must be Lanes \(an Upscaler and its proc workers\), got None$"),
])
def test_lanes_that_are_no_list_of_lanes_are_refused_in_one_line(user, given, said, cpu_lane):
    # found by a library user's check: Pipeline(Lane(up, 1)), the lane for the list of
    # them, and lanes=5 were bare TypeErrors ("'Lane' object is not iterable")
    lanes = {"lane": cpu_lane, "upscaler": cpu_lane.upscaler}.get(given, given)
    with pytest.raises(SettingError, match=said):
        if user == "pipeline":
            Pipeline(lanes)
        else:
            list(ordered_map(lanes, [picture(4, 4)], lambda u, f: u.upscale(f)))


def test_lanes_given_as_an_iterator_are_all_taken(cpu_lane, tmp_path):
    # check_lanes went through the iterator: the pipeline then ran with none
    Image.fromarray(picture(4, 4)).save(tmp_path / "a.png")
    summary = Pipeline(iter([cpu_lane])).run([Job(tmp_path / "a.png", tmp_path / "b.png")])
    assert summary.ok == 1
    assert [f.shape for f in ordered_map(iter([cpu_lane]), [picture(4, 4)], lambda u, f: u.upscale(f))] == \
        [(8, 8, 3)]


@pytest.mark.parametrize("lanes, window, said", [
    ([], 8, "ordered_map needs at least one lane"),
    (None, 0, "the window must be a whole number of items, at least 1, got 0"),
    (None, -1, "the window must be a whole number of items, at least 1, got -1"),
    (None, "2", "the window must be a whole number of items, at least 1, got '2'"),
    # printed whole, over many lines
    (None, np.zeros((9, 9)), "the window must be a whole number of items, at least 1, got an object of type ndarray"),
])
def test_ordered_map_refuses_settings_it_cannot_run_with(lanes, window, said, cpu_lane):
    # found by a bug hunt: no lanes, or a window of 0, waited for ever; -1 and "2"
    # were bare ValueError and TypeError from the threading module
    result = []

    def run():
        try:
            list(ordered_map([cpu_lane] if lanes is None else lanes, [picture(4, 4)],
                             lambda u, f: u.upscale(f), window=window))
        except ValueError as e:
            result.append(str(e))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)
    assert result == [said]


@pytest.mark.parametrize("workers", ["2", 1.5, None, True, np.zeros((9, 9))])
def test_a_lane_refuses_workers_that_are_no_whole_number(workers, cpu_lane):
    # found by a bug hunt: "2" was a bare TypeError, 1.5 was taken and failed later;
    # an array was printed whole, over many lines
    with pytest.raises(ValueError) as refused:
        Lane(cpu_lane.upscaler, workers)
    assert str(refused.value) == f"a lane needs a whole number of proc workers, at least 1, got {describe(workers)}"
    assert "\n" not in str(refused.value)


class Unused:
    """A lane's upscaler where the work given to ordered_map does not use it."""

    device = CPU

    def upscale(self, image, **kw):
        return image


def slowly(upscaler, item):
    time.sleep(0.2)
    return item


def test_closing_the_ordered_map_waits_for_its_threads():
    before = set(threading.enumerate())
    results = ordered_map([Lane(Unused(), 2)], range(50), slowly)
    assert next(results) == 0
    results.close()
    assert set(threading.enumerate()) - before == set()


def test_a_failure_ends_the_ordered_map_with_its_threads():
    before = set(threading.enumerate())

    def fails_on_two(upscaler, item):
        if item == 2:
            raise ValueError("item 2 broke")
        return slowly(upscaler, item)

    with pytest.raises(UpscalingFailed, match=r"^upscaling failed on CPU: ValueError\('item 2 broke'\)$") as failed:
        list(ordered_map([Lane(Unused(), 2)], range(50), fails_on_two))
    assert set(threading.enumerate()) - before == set()
    assert isinstance(failed.value.__cause__, ValueError) and not failed.value.every_device


def test_joining_waits_for_the_target_even_when_the_thread_says_it_ended():
    # Python 3.11's Thread.join, interrupted by Ctrl-C, can leave a running thread
    # marked as stopped: the batch then ended with a worker inside ncnn (SIGABRT).
    release, finished = threading.Event(), []

    def work():
        release.wait()
        finished.append(True)

    worker = workers_mod.Worker(work)
    worker.thread.is_alive = lambda: False  # what the interrupted join leaves behind
    threading.Timer(0.3, release.set).start()
    workers_mod.join_workers([worker])
    assert finished == [True]


def test_a_ctrl_c_as_the_main_thread_waits_for_a_worker_saying_it_ended_leaves_the_worker_sound(monkeypatch):
    # Seen once from a folder run's Ctrl-C: a traceback from a worker thread at
    # Worker's done.set(). The main thread waits for a worker in waits of 0.1 s on a
    # threading.Event, whose condition is over a plain Lock: a Ctrl-C landing as a
    # wait had timed out, the main thread taking that lock back from the worker
    # setting the event, came out of the acquire with the lock not taken, and the
    # wait's end released it under the worker, whose notify then raised RuntimeError.
    errors = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    worker = ctrl_c_as_the_main_thread_takes_back(monkeypatch, lambda: workers_mod.Worker(time.sleep, 0.25))
    with pytest.raises(KeyboardInterrupt):
        workers_mod.join_workers([worker])
    workers_mod.join_workers([worker])
    assert errors == [] and worker.done.is_set()


@pytest.mark.parametrize("kind", ["pictures", "saves"])
def test_a_ctrl_c_as_the_main_thread_puts_a_stop_into_a_full_queue_leaves_its_reader_sound(monkeypatch, kind):
    # The main thread sends each stage its STOPs in puts of 0.1 s (Pipeline._put): a
    # full queue's put waits on a condition, and a Ctrl-C as the put took its lock back
    # from the worker taking a picture released that lock under the worker (as above).
    if kind == "pictures":
        def make():
            q = workers_mod.ProcQueue(1)
            q.put("picture")
            return q
        take = lambda q: q.get(False)  # noqa: E731
    else:
        def make():
            q = workers_mod.Queue(1)
            q.put("picture")
            return q
        take = lambda q: q.get()  # noqa: E731
    q = ctrl_c_as_the_main_thread_takes_back(monkeypatch, make)
    taken, errors = [], []

    def reader():
        time.sleep(0.25)
        try:
            taken.append(take(q))
        except BaseException as e:
            errors.append(e)
    thread = threading.Thread(target=reader)
    thread.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            while True:
                try:
                    q.put(workers_mod.STOP, timeout=0.1)
                    break
                except queue.Full:
                    pass
    finally:
        thread.join(10)
    assert errors == [] and taken == ["picture"]
    if kind == "pictures":
        q.done()  # with the picture taken: a STOP is not taken while a picture is in work
    q.put(workers_mod.STOP, timeout=1)  # the queue sound: its lock free
    assert take(q) is workers_mod.STOP


def test_a_writer_failing_in_an_unforeseen_way_still_counts_the_picture_as_failed(tmp_path, cpu_lane, monkeypatch):
    # Pillow's WebP encoder raised a ValueError: the save thread died and the batch
    # reported nothing failed, with exit status 0.
    def broken(*args, **kwargs):
        raise ValueError("encoding error 5")

    monkeypatch.setattr(pipeline_mod, "write_image", broken)
    jobs = folder_of(tmp_path, 3, size=(4, 4))
    summary = Pipeline([cpu_lane]).run(jobs)
    assert (summary.ok, summary.failed) == (0, 3)
    assert "encoding error 5" in summary.failures[0].message


def test_a_ctrl_c_while_workers_start_is_raised_once_they_all_run():
    # It used to come out of Thread.start() with some workers running and no one to
    # stop them: "terminate called" (SIGABRT) or a hang at exit.
    import os
    import signal

    held = HeldInterrupts()
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # Python runs the handler here: it only takes note
    with pytest.raises(KeyboardInterrupt):
        held.release()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_signal_as_the_hold_is_set_leaves_every_handler_as_it_was(monkeypatch):
    # found by a race audit: a second stop signal, still raising, landing once the first
    # was held came out of HeldInterrupts() itself, before anyone could release it:
    # Ctrl-C stayed noted, never raised, for the rest of the process.
    import os
    import signal

    def raising(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGUSR1, raising)  # as the commands' SIGTERM handler does
    real = signal.signal

    def then_sigusr1(sig, handler):
        old = real(sig, handler)
        if sig == signal.SIGINT and handler is not signal.default_int_handler:
            os.kill(os.getpid(), signal.SIGUSR1)
            for _ in range(9):  # Python runs the handler between these
                pass
        return old
    monkeypatch.setattr(signal, "signal", then_sigusr1)
    try:
        with pytest.raises(KeyboardInterrupt):
            HeldInterrupts([signal.SIGINT, signal.SIGUSR1])
    finally:
        monkeypatch.undo()
        handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGUSR1)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGUSR1, previous)
    assert handlers == (signal.default_int_handler, raising)


def test_a_signal_held_is_handed_to_the_handler_it_came_for_as_the_hold_ends():
    # The commands' handler raises once and ignores the signals after it, so that a
    # second Ctrl-C does not break off the first one's clean-up (a partial file's
    # removal). A signal held was raised as a bare KeyboardInterrupt at the release,
    # past that handler, which then raised the next signal too, inside the clean-up.
    import os
    import signal

    seen = []

    def once(signum, frame):
        seen.append(signum)
        if len(seen) == 1:
            raise KeyboardInterrupt
    previous = signal.signal(signal.SIGUSR1, once)
    try:
        held = HeldInterrupts([signal.SIGUSR1])
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.05)  # Python runs the handler here: it only takes note
        with pytest.raises(KeyboardInterrupt):
            held.release()
        assert seen == [signal.SIGUSR1]
        os.kill(os.getpid(), signal.SIGUSR1)  # a second one, in the first one's clean-up
        time.sleep(0.05)
        assert seen == [signal.SIGUSR1] * 2
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_a_worker_that_cannot_start_gives_the_ctrl_c_back(tmp_path, monkeypatch, cpu_lane):
    # Ctrl-C is held while the workers start; a thread that could not start (too many
    # threads) left it held for good: every later Ctrl-C of the process was noted,
    # never raised, and a hang anywhere after could not be interrupted.
    import signal

    started = []

    class Worker(workers_mod.Worker):
        def __init__(self, *args, **kwargs):
            if len(started) == 2:
                raise RuntimeError("can't start new thread")
            started.append(1)
            super().__init__(*args, **kwargs)
    monkeypatch.setattr(pipeline_mod, "Worker", Worker)
    p, jobs = Pipeline([cpu_lane]), folder_of(tmp_path, 2)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        p.run(jobs)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # Those it started may still wait on it: it runs no more, and says why (it said
    # "interrupted inside a picture", which no run was).
    with pytest.raises(InputError, match=r"^this Pipeline's run could not start its worker threads \(RuntimeError: "
                                         r"can't start new thread\): make a new Pipeline to run again$"):
        p.run(jobs)


def test_a_ctrl_c_as_any_call_of_run_returns_leaves_the_pipeline_to_run_again(tmp_path):
    # found by a race audit: Python runs a signal's handler as a call returns, and one
    # landing as run() took the pipeline, before its try, left it taken: every later run
    # said "this Pipeline is running". Each call that run() makes gets the Ctrl-C in
    # turn (a profile function raises it as the call returns).
    import sys

    jobs = folder_of(tmp_path, 1, size=(4, 4))
    p = Pipeline([Lane(SlowFake(0), 1)])
    run = Pipeline.run.__code__
    turn = 0
    while True:
        turn, returns = turn + 1, []

        def ctrl_c_at_the_turn(frame, event, arg):
            back = frame.f_back  # (a weakref's callback, say, may return into run() too)
            if (event == "c_return" and frame.f_code is run or event == "return" and back is not None
                    and back.f_code is run and frame.f_code.co_name in run.co_names):
                returns.append(event)
                if len(returns) == turn:
                    raise KeyboardInterrupt
        sys.setprofile(ctrl_c_at_the_turn)
        try:
            p.run(jobs)
        except KeyboardInterrupt:
            pass
        finally:
            sys.setprofile(None)
        if len(returns) < turn:  # every call has had its turn
            break
        assert p.run(jobs).ok == 1, f"after a Ctrl-C as call {turn} of run() returned"
    assert turn > 2


def test_a_library_user_s_own_signal_handler_is_not_held_while_workers_start(tmp_path, monkeypatch):
    # The start held every stop signal whatever its handler: a program's own SIGTERM
    # handler was set aside, and a SIGTERM then came out as a Ctrl-C, the run cancelled.
    import os
    import signal

    heard = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: heard.append(signum))

    class Worker(workers_mod.Worker):
        def __init__(self, *args, **kwargs):
            if not heard:
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(9):  # Python runs the handler between these
                    pass
            super().__init__(*args, **kwargs)
    monkeypatch.setattr(pipeline_mod, "Worker", Worker)
    try:
        summary = Pipeline([Lane(SlowFake(0), 1)]).run(folder_of(tmp_path, 1, size=(4, 4)))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert heard == [signal.SIGTERM]
    assert summary.ok == 1 and not summary.cancelled


def within(seconds, call):
    """``call()`` in a thread of its own, so that a hang fails the test, not the suite."""
    result = {}

    def target():
        try:
            result["value"] = call()
        except BaseException as e:
            result["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in result:
        raise result["error"]
    return result["value"]


def test_a_failing_outcome_callback_loses_no_picture_and_ends(tmp_path, cpu_lane):
    # A closed stderr (ncnn-sr -v 2>&1 | head) killed each save thread at its first
    # report: the batch hung for ever, SIGTERM included, with most pictures unwritten.
    jobs = folder_of(tmp_path, 30, size=(4, 4))

    def closed_stderr(outcome):
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(BrokenPipeError):
        within(60, lambda: Pipeline([cpu_lane], on_outcome=closed_stderr).run(jobs))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [j.target.name for j in jobs]


def test_a_worker_dying_in_an_unforeseen_way_ends_the_run_with_its_error(tmp_path, cpu_lane, monkeypatch):
    # The loader died with a traceback on stderr and the run reported 0 of 30 done,
    # none failed: exit status 0.
    def broken(self, item):
        raise RuntimeError("a bug in the loader")

    monkeypatch.setattr(Pipeline, "_check_output", broken)
    jobs = folder_of(tmp_path, 30, size=(4, 4))
    with pytest.raises(RuntimeError, match="a bug in the loader"):
        within(60, lambda: Pipeline([cpu_lane]).run(jobs))


def test_an_output_folder_removed_during_the_run_stops_it(tmp_path, cpu_lane):
    # It was made again with a note, and the run went on: its last line said every
    # picture upscaled while those written before were gone (rm -rf of the output
    # folder 4 s into 300 pictures: '299 upscaled', 281 files there), and a picture
    # whose write met the folder gone failed alone in a line of its own.
    import shutil

    jobs = folder_of(tmp_path, 12)
    out = tmp_path / "out"
    outcomes = []

    def told(outcome):
        outcomes.append(outcome)
        if len(outcomes) == 1:
            while out.exists():  # a loader may make a file there meanwhile (check_writable)
                shutil.rmtree(out, ignore_errors=True)

    summary = within(60, lambda: Pipeline([cpu_lane], load_workers=1, save_workers=1, queue_size=1,
                                          on_outcome=told).run(jobs))
    assert summary.stopped == f"{out} was removed during the run (what was written there is gone)"
    assert not summary.cancelled and summary.ok == 1 and summary.done < len(jobs)
    # The stop's picture failed; one a loader looked at the folder for as it went may
    # too ("cannot write into out: No such file or directory"), as rm -rf empties it.
    said = [o.message for o in summary.failures]
    assert said.count(summary.stopped) == 1 and all(m == summary.stopped or "cannot write into" in m for m in said)
    assert summary.failed <= 2, said
    assert not out.exists()  # not made again for the pictures after


def test_a_folder_of_pictures_removed_during_the_run_stops_it(tmp_path, cpu_lane):
    # Each later picture failed in a line of its own, "file not found: its folder ... is
    # not there" (255 lines of 300 pictures, the folder renamed 4 s in).
    import shutil

    jobs = folder_of(tmp_path, 12)
    outcomes = []

    def told(outcome):
        outcomes.append(outcome)
        if len(outcomes) == 1:
            shutil.rmtree(tmp_path / "in")

    summary = within(60, lambda: Pipeline([cpu_lane], load_workers=1, save_workers=1, queue_size=1,
                                          on_outcome=told).run(jobs))
    assert summary.stopped == f"{tmp_path / 'in'} was removed or renamed during the run"
    assert summary.input_gone and not summary.cancelled and not summary.devices_failed
    assert summary.failed == 1 and summary.failures[0].message == summary.stopped
    # Those read before it are still upscaled and written: their output folder is there.
    assert summary.ok >= 1 and summary.done < len(jobs)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        o.output.name for o in outcomes if o.status == "ok")


def test_a_temporary_file_that_cannot_be_removed_is_named_in_the_summary(tmp_path, cpu_lane, monkeypatch):
    # A folder made read-only while a picture was being written refuses both its rename
    # and the removal of its temporary file: the hidden .part stayed without a word
    # (one of 24 pictures, the folder made read-only after the second).
    import errno

    from ncnn_sr import files as files_mod
    jobs = folder_of(tmp_path, 3, size=(4, 4))
    real_unlink = os.unlink

    def replace(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied")

    def unlink(path, *args, **kwargs):
        # The part as written (its name once locked): the name it was made under is
        # unlinked as it is locked, before the folder turns read-only here.
        if str(path).endswith(".part") and "p001" in str(path) and part_files.MARK in str(path):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_unlink(path, *args, **kwargs)
    monkeypatch.setattr(files_mod.os, "replace", replace)
    monkeypatch.setattr(files_mod.os, "unlink", unlink)
    summary = within(60, lambda: Pipeline([cpu_lane], load_workers=1, save_workers=1).run(jobs))
    left = [p for p in (tmp_path / "out").iterdir()]
    assert len(left) == 1 and left[0].name.startswith(".p001.png.") and left[0].name.endswith(".part")
    assert summary.left_behind == [f"{left[0]}: a temporary file that could not be removed (Permission denied)"]
    assert summary.failed == 3 and summary.stopped is None  # the folder is writable: each picture's own failure


def test_a_picture_whose_folder_was_never_there_fails_alone(tmp_path, cpu_lane):
    # Jobs made by hand may name a folder that is not there: that is no folder removed
    # during the run, and the run goes on with the others.
    jobs = list(folder_of(tmp_path, 3, size=(4, 4)))
    jobs[1] = Job(tmp_path / "nowhere" / "a.png", tmp_path / "out" / "a.png")
    summary = within(60, lambda: Pipeline([cpu_lane], load_workers=1).run(jobs))
    assert summary.stopped is None and (summary.ok, summary.failed) == (2, 1)
    assert summary.failures[0].message == f"{jobs[1].source}: file not found: its folder {tmp_path / 'nowhere'} " \
        "is not there"


def test_skip_existing_with_a_name_too_long_fails_that_picture_alone(tmp_path, cpu_lane):
    # Looking for the existing output raised in the loader, which died: every later
    # picture was lost and the summary did not add up.
    jobs = list(folder_of(tmp_path, 3, size=(4, 4)))
    jobs[0] = Job(jobs[0].source, tmp_path / "out" / ("x" * 300 + ".png"))
    summary = within(60, lambda: Pipeline([cpu_lane], skip_existing=True).run(jobs))
    assert (summary.ok, summary.skipped, summary.failed) == (2, 0, 1)
    assert "too long" in summary.failures[0].message


def test_a_full_disk_stops_the_run_instead_of_failing_every_picture(tmp_path, cpu_lane, monkeypatch):
    # Every later picture would be upscaled only to fail alike, for hours on a big folder.
    import errno

    from ncnn_sr import images as images_mod
    jobs = folder_of(tmp_path, 12)

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(images_mod, "_encode", full)
    summary = within(60, lambda: Pipeline([cpu_lane], load_workers=1, save_workers=1).run(jobs))
    assert summary.stopped.startswith("cannot write ") and summary.stopped.endswith("No space left on device")
    assert not summary.cancelled and summary.ok == 0 and 1 <= summary.failed and summary.done < len(jobs)
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left


def test_two_saves_that_run_out_of_room_together_stop_the_run_once(tmp_path, cpu_lane, monkeypatch):
    # With several save workers the second picture to meet the full disk was a failure
    # of its own, said in a line beside the stop's, which named the same disk.
    import errno
    import threading

    from ncnn_sr import images as images_mod
    jobs = folder_of(tmp_path, 12)
    together = threading.Barrier(2, timeout=30)

    def full(*args):
        together.wait()  # both saves under way before either fails
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(images_mod, "_encode", full)
    summary = within(60, lambda: Pipeline([cpu_lane], load_workers=1, save_workers=2).run(jobs))
    assert summary.stopped.endswith("No space left on device") and not summary.cancelled
    assert summary.failed == 1 and summary.failures[0].message == summary.stopped
    assert summary.ok == 0 and summary.done == 1


# --- planning: outputs that cannot be reached are refused before any picture ------------

def one_picture(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(picture(4, 4)).save(src / "a.png")
    return src


@pytest.mark.parametrize("single", [False, True])
def test_an_output_that_is_a_link_to_nowhere_is_refused_in_words(single, tmp_path):
    # Folder mode upscaled every picture, then failed each with "out is a file, not a
    # folder"; a single picture was told its output "has no extension".
    src = one_picture(tmp_path)
    (tmp_path / "out").symlink_to("/nonexistent/dir")
    with pytest.raises(InputError) as caught:
        plan_jobs(src / "a.png" if single else src, tmp_path / "out")
    into = "" if single else "into "
    assert str(caught.value) == (f"cannot write {into}{tmp_path / 'out'}: "
                                 "it is a link to /nonexistent/dir, which does not exist")


@pytest.mark.parametrize("single", [False, True])
def test_a_link_to_nowhere_above_the_output_is_named(single, tmp_path):
    src = one_picture(tmp_path)
    (tmp_path / "out").symlink_to(tmp_path / "gone")
    output = tmp_path / "out" / "sub" / ("o.png" if single else "")
    with pytest.raises(InputError, match=f"{tmp_path / 'out'} is a link to {tmp_path / 'gone'}, which does not exist"):
        plan_jobs(src / "a.png" if single else src, output)


def test_a_looping_link_as_output_or_input_is_named_so(tmp_path):
    src = one_picture(tmp_path)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(InputError, match="loop: it is a link that leads back to itself"):
        plan_jobs(src / "a.png", tmp_path / "loop")
    with pytest.raises(InputError, match="loop is a link that leads back to itself"):
        plan_jobs(tmp_path / "loop", tmp_path / "o.png")


def test_an_input_that_is_a_link_to_nowhere_says_so(tmp_path):
    (tmp_path / "in.png").symlink_to("/nonexistent/in.png")
    with pytest.raises(InputError, match="in.png is a link to /nonexistent/in.png, which does not exist"):
        plan_jobs(tmp_path / "in.png", tmp_path / "o.png")


def test_an_output_link_to_a_new_file_in_a_folder_that_is_there_is_planned(tmp_path):
    src = one_picture(tmp_path)
    (tmp_path / "o.png").symlink_to(tmp_path / "real.png")
    assert plan_jobs(src / "a.png", tmp_path / "o.png").jobs == (Job(src / "a.png", tmp_path / "o.png"),)


@pytest.mark.parametrize("single", [False, True])
def test_an_output_below_a_file_is_refused_before_any_picture(single, tmp_path):
    # Folder mode upscaled every picture, then failed each with "Not a directory".
    src = one_picture(tmp_path)
    (tmp_path / "file").write_bytes(b"x")
    output = tmp_path / "file" / "sub" / ("o.png" if single else "")
    with pytest.raises(InputError, match=f": {tmp_path / 'file'} is a file, not a folder$"):
        plan_jobs(src / "a.png" if single else src, output)


def test_a_format_a_file_output_overrides_is_noted(tmp_path):
    # The reference's rule (the extension wins) took -f webp without a word.
    src = one_picture(tmp_path)
    plan = plan_jobs(src / "a.png", tmp_path / "o.jpg", fmt="webp")
    assert plan.jobs[0].target == tmp_path / "o.jpg"
    assert plan.notes == (f"fmt='webp' ignored: {tmp_path / 'o.jpg'} is written as jpg, as its extension says",)
    assert plan_jobs(src / "a.png", tmp_path / "o.jpeg", fmt="jpg").notes == ()


# --- planning: what a folder holds, and how its outputs are named -----------------------

def test_an_output_written_with_a_trailing_slash_is_a_folder_made_if_missing(tmp_path):
    # Path("new/") is Path("new"): a picture's missing output folder was taken for a
    # file name, and refused as having no extension.
    src = one_picture(tmp_path)
    for output, folder in [(f"{tmp_path / 'new'}/", False), (f"{tmp_path / 'new'}/.", False),
                           (tmp_path / "new", True)]:
        plan = plan_jobs(src / "a.png", output, folder=folder)
        assert plan.jobs == (Job(src / "a.png", tmp_path / "new" / "a.png"),)
    assert plan_jobs(src / "a.png", f"{tmp_path / 'new'}/", fmt="webp").jobs[0].target == tmp_path / "new" / "a.webp"


def test_a_sub_folder_that_cannot_be_listed_is_one_line_and_the_walk_goes_on(tmp_path, monkeypatch):
    # It ended the whole plan. Root lists any folder whatever its mode: the listing is
    # refused here instead.
    import os

    src = one_picture(tmp_path)
    for sub in ("locked", "open"):
        (src / sub).mkdir()
        Image.fromarray(picture(4, 4)).save(src / sub / "b.png")
    monkeypatch.setattr(os, "scandir", refusing(os.scandir, src / "locked"))
    plan = plan_jobs(src, tmp_path / "out", recursive=True)
    assert [job.source for job in plan.jobs] == [src / "a.png", src / "open" / "b.png"]
    assert plan.unlisted == (f"{src / 'locked'}: cannot list: Permission denied: its pictures, and the folders "
                             "in it, are left out",)
    monkeypatch.setattr(os, "scandir", refusing(os.scandir, src))
    with pytest.raises(InputError, match=f"^{src}: cannot list: Permission denied$"):
        plan_jobs(src, tmp_path / "out", recursive=True)


def refusing(scandir, locked):
    """os.scandir, but "Permission denied" for ``locked``."""
    import errno

    def scan(path="."):
        if Path(path) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return scandir(path)
    return scan


def test_names_that_differ_only_by_case_get_the_clash_name(tmp_path):
    # A.png and a.jpg gave A.png and a.png: one file on macOS, Windows, exFAT and NTFS,
    # where the second overwrote the first.
    src = tmp_path / "in"
    src.mkdir()
    for name in ("A.png", "B.png", "a.jpg", "c.png"):
        Image.fromarray(picture(4, 4)).save(src / name)
    plan = plan_jobs(src, tmp_path / "out")
    assert [(j.source.name, j.target.name) for j in plan.jobs] == [
        ("A.png", "A.png"), ("B.png", "B.png"), ("a.jpg", "a.jpg.png"), ("c.png", "c.png")]
    assert plan.notes == (f"{src / 'A.png'} outputs A.png and {src / 'a.jpg'} would output a.png, the same file "
                          "where case is not told apart: a.jpg will output a.jpg.png",)


def test_names_spelt_in_the_two_unicode_forms_get_the_clash_name(tmp_path):
    # caf\u00e9.jpg and cafe\u0301.png (the accent as its own code point, as macOS
    # spells names) gave two caf\u00e9.png outputs: one file on macOS, where the second
    # overwrote the first.
    src = tmp_path / "in"
    src.mkdir()
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    for name in (f"{composed}.jpg", f"{decomposed}.png"):
        Image.fromarray(picture(4, 4)).save(src / name)
    plan = plan_jobs(src, tmp_path / "out")
    first, second = sorted((f"{composed}.jpg", f"{decomposed}.png"))
    first_out = f"{Path(first).stem}.png"
    assert [(j.source.name, j.target.name) for j in plan.jobs] == [(first, first_out), (second, f"{second}.png")]
    assert plan.notes == (f"{src / first} outputs {first_out} and {src / second} would output "
                          f"{Path(second).stem}.png, the same file where an accented letter's two Unicode "
                          f"spellings are one (macOS): {second} will output {second}.png",)


def test_a_clash_name_taken_by_another_case_gets_one_more_extension(tmp_path):
    # Sorted by name, A.jpg.webp (output A.jpg.png) comes before a.jpg, whose clash name
    # a.jpg.png is then the same file.
    src = tmp_path / "in"
    src.mkdir()
    for name in ("A.jpg.webp", "A.png", "a.jpg"):
        Image.fromarray(picture(4, 4)).save(src / name)
    targets = [j.target.name for j in plan_jobs(src, tmp_path / "out").jobs]
    assert targets == ["A.jpg.png", "A.png", "a.jpg.png.png"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_pipe_named_as_a_picture_in_the_input_folder_is_noted(tmp_path):
    # It was left out without a word, where a link to nowhere is named.
    src = one_picture(tmp_path)
    os.mkfifo(src / "b.png")
    os.mkfifo(src / "notes.txt")  # no picture by its name
    plan = plan_jobs(src, tmp_path / "out")
    assert [job.source for job in plan.jobs] == [src / "a.png"]
    assert plan.notes == (f"{src / 'b.png'} is a pipe (FIFO), not a picture file: left out",)


def test_a_link_to_nowhere_in_the_input_folder_is_noted(tmp_path):
    # It was left out without a word.
    src = one_picture(tmp_path)
    (src / "b.png").symlink_to(tmp_path / "gone.png")
    (src / "notes.txt").symlink_to(tmp_path / "gone.txt")  # no picture even if it led somewhere
    plan = plan_jobs(src, tmp_path / "out")
    assert [job.source for job in plan.jobs] == [src / "a.png"]
    assert plan.notes == (f"{src / 'b.png'} is a link to {tmp_path / 'gone.png'}, which does not exist: left out",)


def _folder_of_names(tmp_path, pictures, others=()):
    """A folder "in" of ``pictures`` (name: Pillow format, or None for the name's own)
    and of ``others`` (name: bytes)."""
    src = tmp_path / "in"
    src.mkdir()
    for name, fmt in pictures.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture(4, 4)).save(src / name, fmt)
    for name, data in dict(others).items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    return src


def test_a_picture_without_an_extension_is_taken_by_its_first_bytes(tmp_path):
    # A png saved as "d" (a scraper's, a phone's export) was left out without a word, as
    # was every other file not named as a picture: the reference reads every file.
    formats = {"d": "PNG", "e": "JPEG", "f": "WEBP", "g": "TIFF", "h": "BMP", "i": "GIF", "a.jfif": "JPEG"}
    src = _folder_of_names(tmp_path, formats, {"f.heic.txt": b"hello", "README": b"BM but a text\n",
                                               "notes.txt": b"", ".DS_Store": b"\0\0\0\1Bud1",
                                               ".hidden": b"\x89PNG\r\n\x1a\n"})
    plan = plan_jobs(src, tmp_path / "out", fmt="jpg")
    out = tmp_path / "out"
    assert [(j.source.name, j.target) for j in plan.jobs] == [(n, out / f"{Path(n).stem}.jpg") for n in sorted(formats)]
    assert plan.notes == (f"3 files in {src} left out: not pictures by their names or first bytes "
                          "(README, f.heic.txt, notes.txt)",)


def test_the_first_bytes_of_each_format_read_tell_a_picture_without_an_extension(tmp_path):
    import io

    from ncnn_sr import heif
    from ncnn_sr.signatures import PICTURE_HEAD, picture_format

    heif.register()
    im = Image.fromarray(picture(8, 8))
    for fmt, options, said in [("PNG", {}, "PNG"), ("JPEG", {}, "JPEG"), ("WEBP", {}, "WebP"),
                               ("WEBP", {"lossless": True}, "WebP"), ("TIFF", {}, "TIFF"), ("BMP", {}, "BMP"),
                               ("GIF", {}, "GIF"), ("JPEG2000", {}, "JPEG 2000"),
                               ("JPEG2000", {"no_jp2": True}, "JPEG 2000"), ("HEIF", {}, "HEIF or AVIF"),
                               ("AVIF", {}, "HEIF or AVIF")]:
        data = io.BytesIO()
        im.save(data, fmt, **options)
        assert picture_format(data.getvalue()[:PICTURE_HEAD]) == said, (fmt, options)
    # Texts and files of other kinds that start alike are none.
    mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00"
    for head in (b"BMW service notes, 2024 ....", b"", b"GIF", mp4, wav, b"\xff\xd8", b"\x89PNG"):
        assert picture_format(head) is None, head


def test_files_not_named_as_pictures_are_said_in_one_note_per_run(tmp_path):
    others = {name: b"x" for name in ("b.txt", "c.json", "sub/d.xmp", "sub/e.heic.txt", ".part", "sub/.DS_Store")}
    src = _folder_of_names(tmp_path, {"a.png": None, "sub/f.png": None}, others)
    assert plan_jobs(src, tmp_path / "out", recursive=True).notes == (
        f"4 files in {src} left out: not pictures by their names (b.txt, c.json, sub/d.xmp, ...)",)
    assert plan_jobs(src, tmp_path / "out").notes == (
        f"2 files in {src} left out: not pictures by their names (b.txt, c.json)",)
    (src / "c.json").unlink()
    assert plan_jobs(src, tmp_path / "out").notes == (
        f"1 file in {src} left out: not a picture by its name (b.txt)",)
    # Videos keep their own note, and are not among these.
    (src / "clip.mp4").write_bytes(b"not looked at")
    assert plan_jobs(src, tmp_path / "out").notes == (
        f"1 file in {src} left out: not a picture by its name (b.txt)",
        f"1 video in {src} left out: plan_jobs plans pictures; upscale_video upscales a video")


def test_only_files_without_an_extension_are_opened_to_plan_a_folder(tmp_path, monkeypatch):
    # A folder of 20000 frames must not have 20000 heads read before the run starts.
    src = _folder_of_names(tmp_path, {f"p{i}.png": None for i in range(30)} | {"d": "PNG", "x.y/z": "PNG"},
                           {f"n{i}.txt": b"x" for i in range(30)} | {"README": b"text", ".d": b"x"})
    opened = []
    real = jobs_mod._head

    def head(path):
        opened.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(jobs_mod, "_head", head)
    plan = plan_jobs(src, tmp_path / "out", recursive=True)
    assert sorted(opened) == ["README", "d", "z"]
    assert {j.source.name: j.target.name for j in plan.jobs if not j.source.name.startswith("p")} == \
        {"d": "d.png", "z": "z.png"}


def test_a_picture_without_an_extension_beside_one_of_its_stem_takes_the_name_by_sorted_order(tmp_path):
    # d (a png's bytes) and d.png both want d.png: as a.bmp beside a.jpg, the first in
    # sorted order takes it, and the other is told.
    src = _folder_of_names(tmp_path, {"d": "PNG", "d.png": None})
    out = tmp_path / "out"
    plan = plan_jobs(src, out)
    assert [(j.source.name, j.target.name, j.stem_siblings) for j in plan.jobs] == [
        ("d", "d.png", (out / "d.png.png",)), ("d.png", "d.png.png", ())]
    assert plan.notes == (f"both {src / 'd'} and {src / 'd.png'} would output d.png: d.png will output d.png.png",)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_pipe_without_an_extension_is_not_opened_to_plan_a_folder(tmp_path):
    # Opening a FIFO to read its first bytes waits for a writer that never comes.
    src = one_picture(tmp_path)
    os.mkfifo(src / "pipe")
    plan = within(20, lambda: plan_jobs(src, tmp_path / "out"))
    assert [job.source.name for job in plan.jobs] == ["a.png"] and plan.notes == ()


# Names browsers, scrapers and tools give pictures, whose last suffix is no extension.
NOT_EXTENSIONS = {"photo.jpg_large": "JPEG", "tw.jpg:large": "JPEG", "image.png~": "PNG", "pic.jpeg.1": "JPEG",
                  "IMG_0001.JPG_original": "JPEG", "page.php": "PNG", "x.jpg?w=800": "JPEG"}


def test_a_picture_whose_suffix_is_no_extension_is_taken_by_its_first_bytes(tmp_path, monkeypatch):
    # Twitter's photo.jpg_large, a backup's image.png~, wget's pic.jpeg.1, exiftool's
    # IMG_0001.JPG_original, a page.php that is a png: all were "left out: not pictures
    # by their names", where the reference reads every file by its content.
    src = _folder_of_names(tmp_path, NOT_EXTENSIONS | {"IMG_0001.JPG": "JPEG"},
                           {"notes.1": b"a text", "c.json": b"\x89PNG\r\n\x1a\n", "d.xmp": b"<x/>",
                            "e.nfo": b"\xff\xd8\xff\xe0", "f.jpg.part": b"\xff\xd8\xff\xe0"})
    # Raw photos: each a TIFF whose first image is its preview, not the photo.
    for name in ("raw.dng", "shot.NEF", "g.cr2"):
        Image.fromarray(picture(4, 4)).save(src / name, "TIFF")
    opened = []
    real = jobs_mod._head
    monkeypatch.setattr(jobs_mod, "_head", lambda path: opened.append(Path(path).name) or real(path))
    out = tmp_path / "out"
    plan = plan_jobs(src, out)
    assert [(j.source.name, j.target.name) for j in plan.jobs] == [
        ("IMG_0001.JPG", "IMG_0001.png"), ("IMG_0001.JPG_original", "IMG_0001.JPG_original.png"),
        ("image.png~", "image.png"), ("page.php", "page.png"), ("photo.jpg_large", "photo.png"),
        ("pic.jpeg.1", "pic.jpeg.png"), ("tw.jpg:large", "tw.png"), ("x.jpg?w=800", "x.png")]
    assert plan.notes == (
        f"both {src / 'IMG_0001.JPG'} and {src / 'IMG_0001.JPG_original'} would output IMG_0001.png: "
        "IMG_0001.JPG_original will output IMG_0001.JPG_original.png",
        f"5 files in {src} left out: not pictures by their names or first bytes (c.json, d.xmp, e.nfo, ...)",
        f"3 raw photos in {src} left out (g.cr2, raw.dng, shot.NEF): raw photos are not read here; develop them to a "
        "16-bit TIFF or PNG first (darktable, RawTherapee, dcraw -6 -T)")
    # Only the names that say nothing are read: no sidecar's, nor a raw photo's.
    assert sorted(opened) == sorted([*NOT_EXTENSIONS, "notes.1"])


def test_a_link_that_breaks_during_a_run_is_named_as_one_not_as_a_file(tmp_path, cpu_lane):
    # "out/sub is a file, not a folder": it was a link whose folder went away.
    src = one_picture(tmp_path)
    (src / "sub").mkdir()
    Image.fromarray(picture(4, 4)).save(src / "sub" / "b.png")
    jobs = plan_jobs(src, tmp_path / "out", recursive=True).jobs
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sub").symlink_to(tmp_path / "unmounted")
    summary = within(60, lambda: Pipeline([cpu_lane]).run(jobs))
    assert (summary.ok, summary.failed) == (1, 1)
    sub = tmp_path / "out" / "sub"
    assert summary.failures[0].message == (f"cannot make the folder of {sub / 'b.png'}: {sub} is a link to "
                                           f"{tmp_path / 'unmounted'}, which does not exist")


def test_a_file_in_the_way_of_a_folder_is_still_named_a_file(tmp_path):
    import errno

    from ncnn_sr.errors import os_reason
    (tmp_path / "f").write_bytes(b"x")
    e = FileExistsError(errno.EEXIST, "File exists", str(tmp_path / "f"))
    assert os_reason(e) == f"{tmp_path / 'f'} is a file, not a folder"


def test_subfolders_that_differ_only_by_case_do_not_share_an_output(tmp_path):
    # With -r, A/x.png and a/x.png went to out/A/x.png and out/a/x.png: one file where
    # case is not told apart, the second overwriting the first.
    src = tmp_path / "in"
    for folder in ("A", "a"):
        (src / folder).mkdir(parents=True)
        Image.fromarray(picture(4, 4)).save(src / folder / "x.png")
    plan = plan_jobs(src, tmp_path / "out", recursive=True)
    assert sorted(j.target.relative_to(tmp_path / "out").as_posix() for j in plan.jobs) == ["A/x.png", "a/x.png.png"]
    assert plan.notes == (f"{src / 'A' / 'x.png'} outputs A/x.png and {src / 'a' / 'x.png'} would output a/x.png, "
                          "the same file where case is not told apart: x.png will output x.png.png",)


def test_an_opaque_sixteen_bit_grey_with_alpha_picture_written_as_jpeg_is_grey(tmp_path, cpu_lane):
    samples = np.stack([np.arange(12).reshape(3, 4) * 5000, np.full((3, 4), 65535)], axis=2).astype(np.uint16)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "la.png").write_bytes(png_bytes(samples, 16, 4))
    jobs = plan_jobs(tmp_path / "in", tmp_path / "out", fmt="jpg").jobs
    assert Pipeline([cpu_lane]).run(jobs).ok == 1
    assert Image.open(jobs[0].target).mode == "L"


# --- animated pictures -----------------------------------------------------------------

def animated_gif(path: Path, count: int = 3, size=(12, 16), **options) -> list[np.ndarray]:
    """An animated GIF of ``count`` frames of few colours (so GIF keeps them exactly);
    the frames as written."""
    frames = []
    for i in range(count):
        frame = np.zeros((*size, 3), np.uint8)
        frame[:, :] = (40 * i, 100, 200 - 40 * i)
        frame[2:6, 3 * i: 3 * i + 5] = (250, 250, 0)
        frames.append(frame)
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], **{"duration": [60, 70, 80][:count], **options})
    return frames


def animated_job(tmp_path, name="anim.gif", out="out.webp", **options):
    (tmp_path / "in").mkdir(exist_ok=True)
    frames = animated_gif(tmp_path / "in" / name, **options)
    return plan_jobs(tmp_path / "in" / name, tmp_path / out).jobs, frames


@pytest.mark.parametrize("out", ["out.webp", "out.png"])
def test_an_animated_gif_becomes_an_animation_of_every_frame_upscaled(out, tmp_path, cpu_lane):
    jobs, frames = animated_job(tmp_path, out=out, loop=0)
    summary = Pipeline([cpu_lane]).run(jobs)
    assert summary.ok == 1 and summary.pixels_in == 3 * 12 * 16
    written = read_frames(tmp_path / out)[0]
    assert written.durations == (60, 70, 80) and written.plays == 0
    assert len(written.frames) == 3
    for got, frame in zip(written.frames, frames):
        assert np.array_equal(got, cpu_lane.upscaler.upscale(frame))


@pytest.mark.parametrize("out", ["out.webp", "out.png", "out.gif"])
def test_gif_frames_of_10_ms_or_less_play_at_the_100_ms_browsers_show(out, tmp_path, cpu_lane):
    jobs, _ = animated_job(tmp_path, out=out, duration=[0, 10, 80])
    Pipeline([cpu_lane]).run(jobs)
    assert stored_delays(tmp_path / out) == [100, 100, 80]  # not as read_frames shows a GIF's


def test_an_animated_gif_asked_as_gif_is_an_animated_gif(tmp_path, cpu_lane):
    jobs, _ = animated_job(tmp_path, out="out.gif")
    Pipeline([cpu_lane]).run(jobs)
    written = read_frames(tmp_path / "out.gif")[0]
    assert len(written.frames) == 3 and written.frames[0].shape == (24, 32, 3) and written.plays == 1


@pytest.mark.parametrize("source, durations, warned", [("a.webp", [12, 14, 80], True), ("a.png", [11, 14, 60], True),
                                                    ("a.webp", [10, 5, 80], False), ("a.png", [40, 50, 60], False),
                                                    ("a.gif", [10, 10, 80], False)])
def test_frames_too_short_for_a_gif_are_said_unless_the_input_was_a_gif(source, durations, warned, tmp_path, cpu_lane):
    # Browsers show GIF frames of 10 ms or less for 100 ms: a WebP's frames of 11 to 14
    # ms made a GIF slow down. Those of 10 ms or less they show for 100 ms in a WebP or
    # APNG too, so the GIF plays alike: no word (it said to keep webp).
    jobs, _ = animated_job(tmp_path, name=source, out="out.gif", duration=durations)
    outcomes = []
    Pipeline([cpu_lane], on_outcome=outcomes.append).run(jobs)
    notes = " ".join(note for outcome in outcomes for note in outcome.notes)
    assert ("frames last" in notes) is warned, notes
    assert not warned or "2 of its 3 frames last 11 to 14 ms, which a GIF holds as 10 ms" in notes, notes
    assert len(read_frames(tmp_path / "out.gif")[0].frames) == 3


def test_transparency_is_kept_in_every_frame(tmp_path, cpu_lane):
    (tmp_path / "in").mkdir()
    frames = [picture(8, 10, channels=4, seed=i) for i in range(2)]
    images = [Image.fromarray(f) for f in frames]
    images[0].save(tmp_path / "in" / "a.png", save_all=True, append_images=images[1:], duration=[50, 50])
    Pipeline([cpu_lane]).run(plan_jobs(tmp_path / "in" / "a.png", tmp_path / "out.png").jobs)
    written = read_frames(tmp_path / "out.png")[0]
    assert len(written.frames) == 2
    for got, frame in zip(written.frames, frames):
        assert np.array_equal(got, cpu_lane.upscaler.upscale(frame))


def test_resize_options_reach_every_frame(tmp_path, cpu_lane):
    jobs, _ = animated_job(tmp_path)
    Pipeline([cpu_lane], width=30).run(jobs)
    assert [f.shape for f in read_frames(tmp_path / "out.webp")[0].frames] == [(23, 30, 3)] * 3


@pytest.mark.parametrize("options", [{"tta": True}, {"alpha": "model"}])
def test_upscaler_settings_apply_to_every_frame(options, tmp_path):
    (tmp_path / "in").mkdir()
    frames = [picture(6, 8, channels=4, seed=i) for i in range(2)]
    images = [Image.fromarray(f) for f in frames]
    images[0].save(tmp_path / "in" / "a.webp", save_all=True, append_images=images[1:], lossless=True)
    with Upscaler(MODEL, device=-1, threads=1, **options) as up:
        Pipeline([Lane(up, 1)]).run(plan_jobs(tmp_path / "in" / "a.webp", tmp_path / "out.png").jobs)
        written = read_frames(tmp_path / "out.png")[0]
        assert len(written.frames) == 2
        for got, frame in zip(written.frames, read_frames(tmp_path / "in" / "a.webp")[0].frames):
            assert np.array_equal(got, up.upscale(frame))


def test_an_animation_asked_as_jpeg_gives_its_first_frame_and_names_the_formats_that_hold_all(tmp_path, cpu_lane):
    jobs, frames = animated_job(tmp_path, out="out.jpg")
    seen = []
    Pipeline([cpu_lane], on_outcome=seen.append).run(jobs)
    assert seen[0].notes == (f"{jobs[0].source} has 3 frames: upscaling the first only (.jpg holds no animation: "
                             "write webp, png or gif for every frame)",)
    with Image.open(tmp_path / "out.jpg") as im:
        assert im.size == (32, 24)


def test_without_animate_an_animation_gives_its_first_frame_as_the_reference_does(tmp_path, cpu_lane):
    jobs, frames = animated_job(tmp_path, out="out.png")
    seen = []
    Pipeline([cpu_lane], animate=False, on_outcome=seen.append).run(jobs)
    assert seen[0].notes == (f"{jobs[0].source} has 3 frames: upscaling the first only",)
    written = read_frames(tmp_path / "out.png")[0]
    assert len(written.frames) == 1 and np.array_equal(written.frames[0], cpu_lane.upscaler.upscale(frames[0]))


def test_animations_and_stills_in_flight_share_the_runs_memory(tmp_path, monkeypatch):
    # An animation's frames had a budget of their own, which the stills' did not see:
    # together they could take half as much again as the memory there was.
    animated_job(tmp_path)
    for i in range(3):
        Image.fromarray(picture(4, 4, seed=i)).save(tmp_path / "in" / f"p{i}.png")
    # 3 frames × 4 bytes × (12x16 + 2 × 24x32), and their writing as 24x32 webp
    from ncnn_sr.animation import frames_write_bytes
    frames, still = 20736 + frames_write_bytes(24, 32, 3, 1, 3, "webp"), still_need(8, 8, fmt="webp")
    monkeypatch.setattr(pipeline_mod.budget, "memory_limit", lambda: frames + still)
    fake = Doubling(lambda: pipeline._memory.held)
    pipeline = Pipeline([Lane(fake, 2)], load_workers=2)
    summary = pipeline.run(plan_jobs(tmp_path / "in", tmp_path / "out", fmt="webp").jobs)
    assert summary.ok == 4
    assert sorted(height for height, _ in fake.seen) == [4, 4, 4, 12, 12, 12]
    for height, held in fake.seen:
        assert (frames if height == 12 else still) <= held <= frames + still
    assert pipeline._memory.held == 0


def test_an_animation_over_the_memory_budget_fails_in_words_and_writes_nothing(tmp_path, cpu_lane):
    jobs, _ = animated_job(tmp_path)
    # 3 frames × 4 bytes × (12x16 in + 2 × 24x32 out) = 20736 bytes
    summary = Pipeline([cpu_lane], animation_memory=20735).run(jobs)
    assert summary.failed == 1
    # The need rounded up, the room down: "need about 20 kB, more than the 20 kB" read
    # as no shortage. upscale_video to the library's caller, who was told of 'ncnn-sr
    # video'; the commands' run keeps it.
    said = (f"{jobs[0].source}: its 3 frames upscaled need about 21 kB of memory, more than the 20 kB animations "
            "may take: ask for a smaller size, or make a video of it ({})")
    assert summary.failures[0].message == said.format("upscale_video")
    summary = Pipeline([cpu_lane], animation_memory=20735, flags=FlagNames()).run(jobs)
    assert summary.failures[0].message == said.format("ncnn-sr video")
    assert not list(tmp_path.glob("out*"))
    assert Pipeline([cpu_lane], animation_memory=20736).run(jobs).ok == 1


@pytest.mark.parametrize("reads", [False, True])
def test_an_animated_webp_over_the_memory_budget_is_told_of_a_video_where_ffmpeg_reads_it(
        reads, tmp_path, cpu_lane, monkeypatch):
    # FFmpeg 9 (PyAV 19) reads animated WebP (webp_anim), FFmpeg 8 (PyAV 18) does not:
    # under 19 its refusal left out the video that 'ncnn-sr video' makes of it as of a GIF.
    from ncnn_sr import images as images_mod
    monkeypatch.setattr(images_mod, "ffmpeg_reads_animated_webp", lambda: reads)
    gif = tmp_path / "anim.gif"
    animated_gif(gif)
    with Image.open(gif) as im:
        im.save(tmp_path / "anim.webp", save_all=True, lossless=True)
    jobs = plan_jobs(tmp_path / "anim.webp", tmp_path / "out.webp").jobs
    summary = Pipeline([cpu_lane], animation_memory=20735, flags=FlagNames()).run(jobs)
    assert summary.failed == 1
    said = summary.failures[0].message
    assert said.startswith(f"{jobs[0].source}: its 3 frames upscaled need about 21 kB of memory"), said
    assert said.endswith(", or make a video of it (ncnn-sr video)" if reads else "ask for a smaller size"), said
    assert not list(tmp_path.glob("out*"))


def test_an_animation_memory_under_a_kb_is_said_in_bytes_in_its_refusal(tmp_path, cpu_lane):
    # An audit's: Pipeline(animation_memory=1000) refused "more than the 0 kB
    # animations may take".
    jobs, _ = animated_job(tmp_path)
    summary = Pipeline([cpu_lane], animation_memory=1000).run(jobs)
    assert summary.failed == 1
    assert summary.failures[0].message.startswith(
        f"{jobs[0].source}: its 3 frames upscaled need about 21 kB of memory, more than the 1000 bytes animations may "
        "take: ")
    assert not list(tmp_path.glob("out*"))


def test_an_animation_whose_writing_does_not_fit_beside_its_frames_fails_before_it_is_upscaled(
        tmp_path, cpu_lane, monkeypatch):
    # Its frames fitted the run's memory, their writing was left to write_frames:
    # every frame was upscaled only for the writer to be refused.
    from ncnn_sr.animation import frames_write_bytes
    jobs, _ = animated_job(tmp_path)
    held = 20736 + frames_write_bytes(24, 32, 3, 1, 3, "webp")
    monkeypatch.setattr(pipeline_mod.budget, "memory_limit", lambda: held - 1)
    summary = Pipeline([cpu_lane]).run(jobs)
    assert summary.failed == 1 and summary.pixels_in == 0
    assert summary.failures[0].message == (
        f"{jobs[0].source}: its 3 frames upscaled and their writing need about 72 kB of memory, more than the "
        "71 kB available")
    assert not list(tmp_path.glob("out*"))
    monkeypatch.setattr(pipeline_mod.budget, "memory_limit", lambda: held)
    assert Pipeline([cpu_lane]).run(jobs).ok == 1


def test_an_animation_whose_later_frames_gain_transparency_counts_their_writing_as_rgba(
        tmp_path, cpu_lane, monkeypatch):
    # Its first frame is opaque (read as RGB), its second has a clear pixel (disposed
    # to the background, the first's is not beneath it): every frame is read as RGBA,
    # whose lossy WebP writing takes more than RGB's. Counted from the first frame, the
    # run held less for their writing than write_frames takes.
    from ncnn_sr.animation import frames_write_bytes
    from ncnn_sr.images import read_image
    (tmp_path / "in").mkdir()
    palette = [0, 0, 0, 40, 100, 200, 250, 250, 0]
    images = []
    for i in range(3):
        indices = np.ones((12, 16), np.uint8)
        indices[0, 0] = 0 if i == 1 else 2  # index 0 is the clear one
        images.append(Image.fromarray(indices, "P"))
        images[-1].putpalette(palette)
    images[0].save(tmp_path / "in" / "anim.gif", save_all=True, append_images=images[1:], duration=60,
                   transparency=0, disposal=2)
    jobs = plan_jobs(tmp_path / "in" / "anim.gif", tmp_path / "out.webp").jobs
    source = str(tmp_path / "in" / "anim.gif")
    assert read_image(source)[0].shape[2] == 3 and read_frames(source)[0].frames[0].shape[2] == 4
    held = 20736 + frames_write_bytes(24, 32, 4, 1, 3, "webp", 80)
    assert held > 20736 + frames_write_bytes(24, 32, 3, 1, 3, "webp", 80)
    monkeypatch.setattr(pipeline_mod.budget, "memory_limit", lambda: held - 1)
    summary = Pipeline([cpu_lane], quality=80).run(jobs)
    assert summary.failed == 1 and summary.pixels_in == 0
    assert not list(tmp_path.glob("out*"))
    monkeypatch.setattr(pipeline_mod.budget, "memory_limit", lambda: held)
    assert Pipeline([cpu_lane], quality=80).run(jobs).ok == 1


def test_sixteen_bit_animation_frames_count_twice_the_memory(cpu_lane):
    # A deep AVIF's frames are held in 16 bits: counted as 8-bit, the budget let
    # through twice what it says.
    pipeline = Pipeline([cpu_lane])
    shallow = pipeline._animation_bytes(np.zeros((12, 16, 3), np.uint8), 3)
    assert pipeline._animation_bytes(np.zeros((12, 16, 3), np.uint16), 3) == 2 * shallow == 2 * 20736


def test_animations_in_flight_share_the_memory_budget(tmp_path, cpu_lane, monkeypatch):
    (tmp_path / "in").mkdir()
    for i in range(6):
        animated_gif(tmp_path / "in" / f"a{i}.gif")
    pipeline = Pipeline([cpu_lane], load_workers=3, animation_memory=2 * 20736)
    held = []
    real_read = loading_mod.read_frames

    def watching_read(path, *known):
        held.append(pipeline._budget.held)
        return real_read(path, *known)

    monkeypatch.setattr(loading_mod, "read_frames", watching_read)
    assert pipeline.run(plan_jobs(tmp_path / "in", tmp_path / "out", fmt="webp").jobs).ok == 6
    assert len(held) == 6 and max(held) <= 2 * 20736 and pipeline._budget.held == 0


def test_a_frame_broken_midway_fails_its_picture_alone_and_writes_nothing_of_it(tmp_path, cpu_lane):
    (tmp_path / "in").mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (4, 40, 40, 3), np.uint8)
    images = [Image.fromarray(f) for f in noise]
    images[0].save(tmp_path / "in" / "cut.gif", save_all=True, append_images=images[1:])
    whole = (tmp_path / "in" / "cut.gif").read_bytes()
    (tmp_path / "in" / "cut.gif").write_bytes(whole[:int(len(whole) * 0.95)])  # into the last frame
    animated_gif(tmp_path / "in" / "good.gif")
    summary = Pipeline([cpu_lane]).run(plan_jobs(tmp_path / "in", tmp_path / "out").jobs)
    assert (summary.ok, summary.failed) == (1, 1)
    assert "cut.gif: broken or truncated picture" in summary.failures[0].message
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.png"]


class Watched:
    """A real Upscaler whose calls are recorded as (lane name, thread). ``meet`` (a
    Barrier) holds each proc worker's first call until as many workers are inside one:
    a test that passes has had them on frames at once, however the threads ran."""

    def __init__(self, upscaler, name, calls, meet=None, before=None):
        self.upscaler, self.scale, self.name, self.device = upscaler, upscaler.scale, name, upscaler.device
        self.calls, self.meet, self.before = calls, meet, before

    def upscale(self, image, progress=None, **kw):
        thread = threading.current_thread()
        first = all(seen is not thread for _, seen in self.calls)
        self.calls.append((self.name, thread))
        if first and self.meet is not None:
            self.meet.wait(timeout=60)  # a broken barrier fails the picture, and the test
        if self.before is not None:
            self.before(image)
        return self.upscaler.upscale(image, progress=progress, **kw)


def test_an_animations_frames_spread_over_every_lane_and_keep_their_order(tmp_path, cpu_lane):
    jobs, frames = animated_job(tmp_path, count=5, duration=[60, 70, 80, 90, 100], loop=0)
    calls, meet = [], threading.Barrier(2)
    lanes = [Lane(Watched(cpu_lane.upscaler, name, calls, meet), 1) for name in "ab"]
    summary = Pipeline(lanes).run(jobs)
    assert summary.ok == 1 and summary.pixels_in == 5 * 12 * 16
    assert {name for name, _ in calls} == {"a", "b"} and len(calls) == 5  # each frame once
    written = read_frames(tmp_path / "out.webp")[0]
    assert written.durations == (60, 70, 80, 90, 100)
    for got, frame in zip(written.frames, frames, strict=True):
        assert np.array_equal(got, cpu_lane.upscaler.upscale(frame))


def test_an_animations_frames_stay_on_its_kind_of_device(tmp_path, cpu_lane):
    # A GPU's animation that handed a frame to a CPU worker waited for it long after
    # its own frames were done; the CPU lane here also holds the other lane's first frame.
    jobs, _ = animated_job(tmp_path, count=4, duration=[50] * 4)
    calls = []
    gpu_like = Watched(cpu_lane.upscaler, "gpu", calls)
    gpu_like.device = SimpleNamespace(is_gpu=True)
    lanes = [Lane(gpu_like, 1), Lane(Watched(cpu_lane.upscaler, "cpu", calls), 1)]
    assert Pipeline(lanes).run(jobs).ok == 1
    assert len(calls) == 4 and len({name for name, _ in calls}) == 1


def test_an_animations_frames_spread_over_the_proc_workers_of_one_lane(tmp_path, cpu_lane):
    jobs, frames = animated_job(tmp_path, count=4, duration=[50] * 4)
    calls = []
    lane = Lane(Watched(cpu_lane.upscaler, "cpu", calls, threading.Barrier(2)), 2)
    assert Pipeline([lane]).run(jobs).ok == 1
    assert len({thread for _, thread in calls}) == 2 and len(calls) == 4
    for got, frame in zip(read_frames(tmp_path / "out.webp")[0].frames, frames, strict=True):
        assert np.array_equal(got, cpu_lane.upscaler.upscale(frame))


def test_a_frame_failing_on_another_worker_fails_its_animation_alone(tmp_path, cpu_lane):
    (tmp_path / "in").mkdir()
    frames = animated_gif(tmp_path / "in" / "a.gif", count=3)
    Image.fromarray(picture(10, 12)).save(tmp_path / "in" / "b.png")

    def fail_the_second_frame(image):
        if image.shape == frames[1].shape and np.array_equal(image, frames[1]):
            raise MemoryError

    calls, meet = [], threading.Barrier(2)
    lanes = [Lane(Watched(cpu_lane.upscaler, name, calls, meet, fail_the_second_frame), 1) for name in "ab"]
    summary = Pipeline(lanes).run(plan_jobs(tmp_path / "in", tmp_path / "out").jobs)
    assert (summary.ok, summary.failed) == (1, 1)
    assert summary.failures[0].message == f"{summary.failures[0].job.source}: not enough memory for its result"
    assert summary.failures[0].job.source.name == "a.gif"
    assert summary.pixels_in == 10 * 12  # the failed animation's frames are not counted
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["b.png"]


def test_a_failed_animations_frames_are_freed_with_it(tmp_path, cpu_lane):
    # Its error held the frames upscaled before it in a cycle through its traceback,
    # which only a full collection frees: with failover, they stayed as the animation
    # was upscaled again on another device.
    jobs, frames = animated_job(tmp_path, count=5, duration=[50] * 5)
    results = []

    class Kept(Watched):
        def upscale(self, image, progress=None, **kw):
            if np.array_equal(image, frames[3]):
                raise MemoryError
            result = super().upscale(image, progress=progress, **kw)
            results.append(weakref.ref(result))
            return result

    gc.collect()
    gc.disable()  # what a cycle holds stays, as it does between collections
    try:
        assert Pipeline([Lane(Kept(cpu_lane.upscaler, "a", []), 1)]).run(jobs).failed == 1
        assert len(results) == 3 and sum(r() is not None for r in results) == 0
    finally:
        gc.enable()


def test_an_animation_whose_frame_fails_on_a_helping_device_is_done_again_by_the_others(tmp_path, cpu_lane):
    jobs, frames = animated_job(tmp_path, count=5, duration=[60, 70, 80, 90, 100], loop=0)

    def lost(image):
        raise RuntimeError("device lost")

    calls, meet = [], threading.Barrier(2)
    lanes = [Lane(Watched(cpu_lane.upscaler, "a", calls, meet), 1), Lane(Watched(cpu_lane.upscaler, "b", calls, meet,
                                                                                 lost), 1)]
    summary = within(60, lambda: Pipeline(lanes).run(jobs))
    assert (summary.ok, summary.failed, summary.lost) == (1, 0, ["CPU lane 2: RuntimeError('device lost')"])
    assert [name for name, _ in calls].count("b") == 1  # its one frame, then no more
    assert summary.pixels_in == 5 * 12 * 16
    written = read_frames(tmp_path / "out.webp")[0]
    for got, frame in zip(written.frames, frames, strict=True):
        assert np.array_equal(got, cpu_lane.upscaler.upscale(frame))


def test_cancel_stops_an_animation_spread_over_workers_after_their_current_frames(tmp_path, cpu_lane):
    jobs, _ = animated_job(tmp_path, count=3)
    holder, calls, meet = {}, [], threading.Barrier(2)
    lanes = [Lane(Watched(cpu_lane.upscaler, name, calls, meet, lambda image: holder["p"].cancel()), 1)
             for name in "ab"]
    holder["p"] = Pipeline(lanes)
    summary = holder["p"].run(jobs)
    assert summary.cancelled and summary.done == 0
    assert len(calls) == 2  # one frame begun on each lane, the third never
    assert not (tmp_path / "out.webp").exists()


def test_workers_that_each_own_an_animation_finish_them_all(tmp_path, cpu_lane):
    (tmp_path / "in").mkdir()
    for i in range(4):
        animated_gif(tmp_path / "in" / f"a{i}.gif", count=3)
        Image.fromarray(picture(6, 8, seed=i)).save(tmp_path / "in" / f"s{i}.png")
    lanes = [Lane(cpu_lane.upscaler, 2), Lane(cpu_lane.upscaler, 1)]
    summary = Pipeline(lanes, load_workers=2).run(plan_jobs(tmp_path / "in", tmp_path / "out").jobs)
    assert summary.ok == 8 and summary.pixels_in == 4 * (3 * 12 * 16 + 6 * 8)


def test_skip_existing_skips_an_animation_without_reading_its_frames(tmp_path, cpu_lane, monkeypatch):
    jobs, _ = animated_job(tmp_path)
    (tmp_path / "out.webp").write_bytes(b"done before")
    monkeypatch.setattr(loading_mod, "read_frames", None)  # called, it would fail the picture
    summary = Pipeline([cpu_lane], skip_existing=True).run(jobs)
    assert summary.skipped == 1 and (tmp_path / "out.webp").read_bytes() == b"done before"


def test_the_memory_budget_waits_for_room_and_gives_up_when_cancelled():
    from ncnn_sr.budget import MemoryBudget

    budget, cancel = MemoryBudget(10), threading.Event()
    assert budget.take(6, cancel) and budget.held == 6
    taken = []
    waiting = threading.Thread(target=lambda: taken.append(budget.take(5, cancel)))
    waiting.start()
    time.sleep(0.3)
    assert taken == []  # 6 + 5 does not fit
    budget.give(6)
    waiting.join(30)  # a bound against a hang: 2 s could pass on a loaded machine before it took
    assert taken == [True] and budget.held == 5
    cancel.set()
    assert budget.take(6, cancel) is False and budget.held == 5


@pytest.mark.parametrize("src, dst, said", [
    (None, "out/", "plan_jobs needs a file's path, got None"),
    ("in.png", 5, "plan_jobs needs a file's path, got 5"),
    ("in\0.png", "out/", "'in\\x00.png': not a valid path (it holds a NUL byte)"),
])
def test_plan_jobs_refuses_what_is_no_path_in_one_line(src, dst, said):
    # found by a bug hunt: None was a bare TypeError from pathlib
    with pytest.raises(InputError) as refused:
        plan_jobs(src, dst)
    assert str(refused.value) == said


def test_plan_jobs_takes_paths_as_bytes(tmp_path):
    Image.fromarray(picture(4, 4)).save(tmp_path / "a.png")
    plan = plan_jobs(os.fsencode(tmp_path / "a.png"), os.fsencode(tmp_path / "out") + b"/")
    assert [(j.source, j.target) for j in plan.jobs] == [(tmp_path / "a.png", tmp_path / "out" / "a.png")]


@pytest.mark.parametrize("setting, said", [
    ({"scale": 0}, "scale must be a positive number, got 0"),
    ({"width": "20"}, "width must be a whole number of pixels, got '20'"),
    ({"quality": 500}, "quality must be a whole number from 1 to 100, got 500"),
])
def test_a_pipeline_refuses_output_settings_before_any_picture(setting, said, cpu_lane, tmp_path):
    # found by a bug hunt: each picture of the batch failed on the same setting, one
    # by one, and the output folder was made for none of them
    with pytest.raises(InputError) as refused:
        Pipeline([cpu_lane], **setting)
    assert str(refused.value) == said


def test_a_job_made_of_str_paths_runs_as_one_of_paths(tmp_path, cpu_upscalers):
    # Its str target failed inside the run on a bare AttributeError ('str' has no 'suffix').
    Image.fromarray(picture(16, 16)).save(tmp_path / "a.png")
    job = Job(str(tmp_path / "a.png"), os.fspath(tmp_path / "a_x2.png"))
    assert job == Job(tmp_path / "a.png", tmp_path / "a_x2.png")
    summary = Pipeline([Lane(cpu_upscalers("realesr-animevideov3-x2"), 1)]).run([job])
    assert summary.ok == 1 and (tmp_path / "a_x2.png").exists()


@pytest.mark.parametrize("fields, said", [
    ({"target": None}, "a Job's target needs a file's path, got None"),
    ({"source": 5}, "a Job's source needs a file's path, got 5"),
    # found by a check of the library's faults: a bare TypeError ('int' object is not iterable)
    ({"stem_siblings": 5}, "a Job's stem_siblings must be a path or a sequence of paths, got 5"),
    ({"stem_siblings": [None]}, "a Job's stem sibling needs a file's path, got None"),
    # found by a README audit: in_place="no", which is true, let the run replace the
    # picture by its output, as in_place=True does
    ({"in_place": "no"}, "a Job's in_place must be True or False, got 'no'"),
    ({"listed_in": 5}, "a Job's listed_in needs a folder's path, got 5"),
])
def test_a_job_of_the_wrong_kind_is_a_setting_error(fields, said):
    # A SettingError (an InputError and a ValueError), as jobs' other refusals of an argument are.
    with pytest.raises(SettingError) as refused:
        Job(**{"source": "a.png", "target": "b.png", **fields})
    assert str(refused.value) == said and isinstance(refused.value, (InputError, ValueError))


@pytest.mark.parametrize("given", ["up", None, object(), SimpleNamespace(upscale=2), Upscaler])
def test_a_lane_of_what_cannot_upscale_is_a_setting_error_as_it_is_made(given):
    # A Pipeline's lane of "up" was a bare AttributeError in run, and ordered_map took
    # Lane(None, 1), then failed each item as "upscaling failed on None", a device's
    # failure (a library audit). The class itself has an upscale, but no network.
    with pytest.raises(SettingError) as refused:
        Lane(given, 1)
    assert str(refused.value) == f"a lane needs an Upscaler (or anything with its upscale method), got {describe(given)}"
    assert "\n" not in str(refused.value)


def test_a_lane_takes_any_stand_in_with_an_upscale_method():
    # The command's tests and tools put fakes and wrappers in lanes: only what cannot
    # upscale at all is refused.
    for stand_in in (SlowFake(0), SimpleNamespace(upscale=lambda image: image)):
        assert Lane(stand_in, 2).upscaler is stand_in


def test_a_job_that_would_write_over_its_input_or_another_jobs_output_fails_alone(tmp_path, cpu_lane):
    # Jobs made by hand wrote over their input, or over each other's output, and each
    # was counted ok: the first picture's upscale was lost without a word.
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        Image.fromarray(picture(8, 8, seed=i)).save(tmp_path / name)
    before = (tmp_path / "c.png").read_bytes()
    outcomes = []
    summary = Pipeline([cpu_lane], on_outcome=outcomes.append).run([
        Job(tmp_path / "a.png", tmp_path / "out.png"), Job(tmp_path / "b.png", tmp_path / "out.png"),
        Job(tmp_path / "c.png", str(tmp_path / "." / "c.png"))])
    assert (summary.ok, summary.failed) == (1, 2)
    errors = sorted(o.message for o in outcomes if o.status == "failed")
    assert errors[0] == f"{tmp_path / 'b.png'}: its output {tmp_path / 'out.png'} is another picture's of this run: " \
                        "it would be overwritten; choose another output"
    assert errors[1] == f"{tmp_path / 'c.png'}: its output is the input: it would be overwritten; choose another " \
                        "output"
    assert (tmp_path / "c.png").read_bytes() == before
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")),
                          cpu_lane.upscaler.upscale(np.asarray(Image.open(tmp_path / "a.png"))))


def test_outputs_differing_only_by_case_are_one_file_on_macos_and_windows(tmp_path, cpu_lane, monkeypatch):
    # Their file systems tell no case apart: the second job wrote over the first's
    # output, both counted ok.
    monkeypatch.setattr(jobs_mod, "_NAMES_FOLDED", True)
    for i, name in enumerate(("a.png", "b.png")):
        Image.fromarray(picture(8, 8, seed=i)).save(tmp_path / name)
    outcomes = []
    summary = Pipeline([cpu_lane], on_outcome=outcomes.append).run([
        Job(tmp_path / "a.png", tmp_path / "OUT.png"), Job(tmp_path / "b.png", tmp_path / "out.png")])
    assert (summary.ok, summary.failed) == (1, 1)
    assert [o.message for o in outcomes if o.status == "failed"] == [
        f"{tmp_path / 'b.png'}: its output {tmp_path / 'out.png'} is another picture's of this run: it would be "
        "overwritten; choose another output"]


def test_a_job_given_one_stem_sibling_takes_it_whole():
    # A str was taken a character at a time.
    assert Job("a.jpg", "a.png", stem_siblings="a.png.png").stem_siblings == (Path("a.png.png"),)


def test_a_cancelled_run_tells_on_outcome_of_the_jobs_it_finished_and_of_no_other(tmp_path, cpu_lane):
    # Its docstring said "once per job": 19 outcomes came for 40 jobs. The jobs a run
    # ended early did not finish, nor were read to their end, get none; Summary says.
    jobs = folder_of(tmp_path, 40, size=(4, 4))
    taken, seen = [], []

    def lazily():
        for job in jobs:
            taken.append(job)
            yield job

    holder = {}

    def first_cancels(outcome):
        seen.append(outcome)
        holder["p"].cancel()

    holder["p"] = Pipeline([cpu_lane], on_outcome=first_cancels)
    summary = holder["p"].run(lazily())
    assert summary.cancelled and len(seen) == summary.done == summary.ok + summary.skipped + summary.failed
    assert len({o.job.source for o in seen}) == len(seen) and all(o.status in ("ok", "skipped", "failed") for o in seen)
    assert len(taken) < len(jobs)  # the rest were never asked for
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(o.output.name for o in seen if o.output)


@pytest.mark.parametrize("given, said", [
    ({"suffix": "/../x"}, "suffix is added to a file's name: it cannot hold a folder separator, got '/../x'"),
    ({"suffix": ".."}, "suffix needs a letter or digit: dots alone make names that hide or mean other files, "
                       "got '..'"),
    ({"suffix": 5}, "suffix must be a str, got 5"),
    ({"recursive": "no"}, "recursive must be True or False, got 'no'"),
    ({"folder": 1}, "folder must be True or False, got 1"),
])
def test_plan_jobs_refuses_a_suffix_or_switch_the_command_would_refuse(given, said, tmp_path):
    # found by a library user's check: the command checks --suffix, plan_jobs did not:
    # suffix="/../x" planned outputs outside the output folder, 5 named them "a5.png",
    # and recursive="no" (true) planned the subfolders' pictures too
    (tmp_path / "in" / "sub").mkdir(parents=True)
    for name in ("in/a.png", "in/sub/b.png"):
        Image.fromarray(picture(4, 4)).save(tmp_path / name)
    with pytest.raises(SettingError) as refused:
        plan_jobs(tmp_path / "in", tmp_path / "out", **given)
    assert str(refused.value) == said
    assert not (tmp_path / "out").exists()


def test_a_name_ending_in_a_dot_outputs_the_part_before_its_last_dot(tmp_path):
    # The reference names an output by the part of its input's name before the last
    # dot: "photo." gives photo.png, where pathlib's stem (the whole name, before
    # Python 3.14) wrote photo..png, and "a.." a...png.
    src = _folder_of_names(tmp_path, {"photo.": "PNG", "a..": "PNG", "b.png": None})
    out = tmp_path / "out"
    plan = plan_jobs(src, out)
    assert [(j.source.name, j.target.name) for j in plan.jobs] == [
        ("a..", "a..png"), ("b.png", "b.png"), ("photo.", "photo.png")]
    one = plan_jobs(src / "photo.", f"{out}{os.sep}", suffix="_x2")
    assert [j.target for j in one.jobs] == [out / "photo_x2.png"]


def test_a_name_ending_in_a_dot_clashes_with_the_picture_of_its_stem(tmp_path):
    # photo. and photo.png both output photo.png: the first in sorted order takes it,
    # the other is renamed, as a.bmp beside a.jpg; "photo" (no dot) and "photo." alike.
    src = _folder_of_names(tmp_path, {"photo.": "PNG", "photo.png": None, "d": "PNG", "d.": "PNG"})
    out = tmp_path / "out"
    plan = plan_jobs(src, out)
    assert [(j.source.name, j.target.name, j.stem_siblings) for j in plan.jobs] == [
        ("d", "d.png", (out / "d..png",)), ("d.", "d..png", ()),
        ("photo.", "photo.png", (out / "photo.png.png",)), ("photo.png", "photo.png.png", ())]
    assert plan.notes == (f"both {src / 'd'} and {src / 'd.'} would output d.png: d. will output d..png",
                          f"both {src / 'photo.'} and {src / 'photo.png'} would output photo.png: photo.png will "
                          "output photo.png.png")


# Suffixes Python 3.11's own table of types knows, which a folder run leaves out by
# their names, and suffixes it does not, whose files are opened to be told by their
# first bytes (3.13's table knows .rst and .markdown, 3.14's .flac, 3.15's .toml).
KNOWN_BY_NAME = (".json", ".txt", ".xmp", ".nfo", ".pdf", ".mp4", ".mp3", ".zip", ".html", ".csv", ".doc", ".wav",
                 ".py", ".gz", ".tar", ".svg", ".opus", ".aac", ".webmanifest", ".JSON", ".Pdf")
TOLD_BY_BYTES = (".rst", ".markdown", ".docx", ".flac", ".woff2", ".7z", ".1", ".php", ".jpg_large", ".1080p",
                 ".png~", ".toml")


def test_the_suffixes_told_by_their_names_are_the_same_whatever_the_python(monkeypatch):
    # Python's own table of types (mimetypes) grows with each version: a page.rst holding
    # a png was upscaled under Python 3.11 and left out unopened under 3.13, and a
    # folder run upscaled other pictures under each Python.
    import mimetypes

    from ncnn_sr import path_names

    def answers():
        for cached in ("says_its_kind", "_types_known"):  # as they were cached before
            getattr(getattr(path_names, cached, None), "cache_clear", lambda: None)()
        return {ext: path_names.says_its_kind(ext) for ext in KNOWN_BY_NAME + TOLD_BY_BYTES}

    expected = {ext: ext in KNOWN_BY_NAME for ext in KNOWN_BY_NAME + TOLD_BY_BYTES}
    assert answers() == expected
    # A later Python's table, as far as the table is read: the same answers.
    newer = {**mimetypes._types_map_default, **{ext: "application/octet-stream" for ext in TOLD_BY_BYTES}}
    for name in ("_types_map_default", "types_map"):
        monkeypatch.setattr(mimetypes, name, newer)
    try:
        assert answers() == expected
    finally:
        monkeypatch.undo()
        answers()


def test_skip_existing_takes_no_other_input_s_output_for_a_picture_s_earlier_clash_name(tmp_path):
    # a.png's output is a.png.png where an a.jpg takes a.png; an input named a.png.png
    # outputs a.png.png too: with a.png's own output missing, a.png was not to be
    # skipped for that other's.
    from ncnn_sr.outcomes import found_output

    src = _folder_of_names(tmp_path, {"a.png": None, "a.png.png": "PNG", "b.png": None})
    out = tmp_path / "out"
    jobs = plan_jobs(src, out).jobs
    assert [(j.source.name, j.target.name, j.clash_name) for j in jobs] == [
        ("a.png", "a.png", ""), ("a.png.png", "a.png.png", "a.png.png.png"), ("b.png", "b.png", "b.png.png")]
    out.mkdir()
    Image.fromarray(picture(4, 4)).save(out / "a.png.png")
    Image.fromarray(picture(4, 4)).save(out / "b.png.png")  # b.png's, when a b.jpg was there
    assert [found_output(job) for job in jobs] == [(None, None), (out / "a.png.png", None), (out / "b.png.png", None)]


def test_a_folder_of_pictures_beside_a_file_with_a_video_s_first_bytes_is_planned_without_pyav(tmp_path, monkeypatch):
    # Whether such a file holds a moving picture is asked of FFmpeg: where PyAV is
    # missing (a picture run needs none), the plan failed on its ImportError.
    import sys

    from ncnn_sr.signatures import _ASF

    src = _folder_of_names(tmp_path, {"a.png": None}, {"clip": _ASF + bytes(100)})
    monkeypatch.setitem(sys.modules, "av", None)  # import av: ImportError
    plan = plan_jobs(src, tmp_path / "out")
    assert [j.source.name for j in plan.jobs] == ["a.png"]
    assert plan.notes == (f"1 video in {src} left out: plan_jobs plans pictures; upscale_video upscales a video",)


@pytest.mark.skipif(os.name == "nt", reason="no flock: no folder is swept")
def test_each_run_of_a_long_lived_process_sweeps_its_folders_again(tmp_path, cpu_lane):
    # The folders swept of stale part files were kept for the process's life: a part a
    # killed run left in a folder this process had swept before (an hour or a day
    # earlier, a library user's long-lived service) was never removed.
    jobs = folder_of(tmp_path, 2)
    pipeline = Pipeline([cpu_lane])
    assert pipeline.run(jobs).ok == 2
    stale = tmp_path / "out" / ".p000.png.ncnn-sr-part-locked.abcd1234.part"  # as a run SIGKILL ended left it
    stale.write_bytes(b"x" * 100)
    assert pipeline.run(jobs).ok == 2
    assert not stale.exists()
    assert Pipeline([cpu_lane]).run(jobs).ok == 2 and sorted(os.listdir(tmp_path / "out")) == ["p000.png", "p001.png"]


@pytest.mark.parametrize("removed", ["b", "a"])  # one not read yet, the one being read
def test_a_sub_folder_removed_during_the_run_is_one_line_and_the_run_goes_on(removed, tmp_path, cpu_lane,
                                                                            monkeypatch):
    # -r: a sub-folder removed during the run before any picture of it was read failed
    # each of its pictures alone, a line each ("file not found"), and counted them failed;
    # one removed as its pictures were read stopped the whole run, the other folders undone.
    import shutil

    from ncnn_sr import loading

    for sub in "abc":
        (tmp_path / "in" / sub).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(picture(10, 12, seed=i)).save(tmp_path / "in" / sub / f"p{i}.png")
    jobs = plan_jobs(tmp_path / "in", tmp_path / "out", recursive=True).jobs
    outcomes = []
    told = outcomes.append

    def read_image(path, *args, **kwargs):
        # Removed once a's second picture is read: removed on the first outcome, every
        # picture of a was read by then in 2 runs of 8 (load ahead), and none was lost.
        read = real(path, *args, **kwargs)
        if Path(path) == tmp_path / "in" / "a" / "p1.png":
            shutil.rmtree(tmp_path / "in" / removed)
        return read

    real = loading.read_image
    monkeypatch.setattr(loading, "read_image", read_image)
    summary = within(60, lambda: Pipeline([cpu_lane], load_workers=1, save_workers=1, queue_size=1,
                                          on_outcome=told).run(jobs))
    gone = f"{tmp_path / 'in' / removed} was removed or renamed during the run"
    assert summary.stopped is None and not summary.cancelled and summary.failed == 0
    assert summary.gone_folders == [gone] and summary.ok + summary.not_done == 18 and summary.done == summary.ok
    lost = [o for o in outcomes if o.status == "not done"]
    assert {o.job.source.parent.name for o in lost} == {removed} and {o.message for o in lost} == {gone}
    assert len(lost) == (6 if removed == "b" else 4)
    written = {sub: sorted(os.listdir(tmp_path / "out" / sub)) for sub in os.listdir(tmp_path / "out")}
    assert written["c"] == [f"p{i}.png" for i in range(6)]
    assert sum(map(len, written.values())) == summary.ok


@pytest.mark.parametrize("removed", ["a", "b"])  # once an output was written into it; as its first is written
def test_a_sub_folder_removed_during_a_run_in_place_is_its_own_loss(removed, tmp_path, cpu_lane, monkeypatch):
    # -r in place (-o the same as -i, --suffix): a sub-folder removed once an output was
    # written into it, its own output folder, stopped the whole run ("in/a was removed
    # during the run (what was written there is gone)"), b and c undone, though their
    # outputs go into b and c. One removed as its first picture was written stopped the
    # run too, or was made again for a picture read before, holding outputs alone.
    import shutil

    from ncnn_sr import pipeline

    src = tmp_path / "in"
    for sub in "abc":
        (src / sub).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(picture(10, 12, seed=i)).save(src / sub / f"p{i}.png")
    jobs = plan_jobs(src, src, recursive=True, suffix="_x2").jobs
    outcomes = []

    def told(outcome):
        outcomes.append(outcome)
        if removed == "a" and len(outcomes) == 1:
            shutil.rmtree(src / "a")

    def write_image(target, *args, **kwargs):
        if removed == "b" and Path(target).parent == src / "b" and not outcomes[-1].job.source.parent.name == "b":
            shutil.rmtree(src / "b")  # once: b's first picture is read and upscaled, none written
        return real(target, *args, **kwargs)

    real = pipeline.write_image
    monkeypatch.setattr(pipeline, "write_image", write_image)
    summary = within(60, lambda: Pipeline([cpu_lane], load_workers=1, save_workers=1, queue_size=1,
                                          on_outcome=told).run(jobs))
    gone = f"{src / removed} was removed or renamed during the run"
    assert summary.stopped is None and not summary.cancelled and summary.failed == 0, summary.stopped
    assert summary.gone_folders == [gone] and summary.ok + summary.not_done == 18
    assert summary.ok == 12 + (removed == "a") and not (src / removed).exists()
    assert {o.job.source.parent.name for o in outcomes if o.status == "not done"} == {removed}
    for sub in {"a", "b", "c"} - {removed}:
        pairs = [(f"p{i}.png", f"p{i}_x2.png") for i in range(6)]
        assert sorted(os.listdir(src / sub)) == sorted(name for pair in pairs for name in pair)


@pytest.mark.parametrize("removed", ["a", "a/x", "skipped", "out"])
def test_an_output_sub_folder_removed_during_the_run_is_one_line_and_the_run_goes_on(removed, tmp_path, cpu_lane):
    # -r: an output sub-folder removed once an output was written into it stopped the
    # whole run ("out/a was removed during the run (what was written there is gone)"),
    # b and c undone, though their outputs go into folders of their own; one whose
    # outputs --skip-existing found there was made again in silence for the pictures
    # left, the skipped ones gone while counted skipped. The folder given (-o) still
    # stops the run: every later picture would be lost alike.
    import shutil

    src, out = tmp_path / "in", tmp_path / "out"
    subs = {"a/x" if removed == "a/x" else "a": 6, "b": 6, "c": 6}
    for sub, count in subs.items():
        (src / sub).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(picture(10, 12, seed=i)).save(src / sub / f"p{i}.png")
    if removed == "skipped":  # a stopped run's outputs: a's first three
        (out / "a").mkdir(parents=True)
        for i in range(3):
            Image.fromarray(picture(20, 24, seed=i)).save(out / "a" / f"p{i}.png")
    jobs = plan_jobs(src, out, recursive=True).jobs
    gone = out if removed == "out" else out / "a"
    outcomes, removed_once = [], []

    def told(outcome):  # removed as its first output is told (-r plans a/x after b and c)
        outcomes.append(outcome)
        if outcome.output is not None and gone in outcome.output.parents and not removed_once:
            while gone.exists():  # a loader may make a file there meanwhile (check_writable)
                shutil.rmtree(gone, ignore_errors=True)
            removed_once.append(gone)

    summary = within(60, lambda: Pipeline([cpu_lane], load_workers=1, save_workers=1, queue_size=1,
                                          skip_existing=removed == "skipped", on_outcome=told).run(jobs))
    words = f"{gone} was removed during the run (what was written there is gone)"
    if removed == "out":
        # The stop's picture failed; one a loader looked at the folder for as it went
        # may too ("cannot write into out: No such file or directory").
        assert summary.stopped == words and words in [o.message for o in summary.failures] and summary.done < 18
        assert not out.exists()  # not made again for the pictures after
        return
    assert summary.stopped is None and not summary.cancelled and summary.failed == 0, summary.stopped
    assert summary.gone_folders == [words] and summary.ok + summary.skipped + summary.not_done == 18
    assert (summary.ok, summary.skipped, summary.not_done) == ((12, 1, 5) if removed == "skipped" else (13, 0, 5))
    lost = [o for o in outcomes if o.status == "not done"]
    assert {o.job.source.parent.relative_to(src).as_posix() for o in lost} == {"a/x" if removed == "a/x" else "a"}
    assert {o.message for o in lost} == {words}
    assert sorted(os.listdir(out)) == ["b", "c"]  # a not made again for the pictures left
    for sub in "bc":
        assert sorted(os.listdir(out / sub)) == [f"p{i}.png" for i in range(6)]


def test_an_animation_run_holds_its_frames_in_python_about_once(tmp_path):
    # Issue #6 (memory that does not grow with the picture beyond the output): the
    # numpy side of a run held the input frames, the upscaled frames once and a
    # window's floats at its peak, 4.06 MB for 16 frames upscaled to 192x256 (2.36 MB
    # of output), in two runs alike. Every upscaled frame kept as float32, or copied
    # once more before writing (tried: 5.2 MB), passes twice the output.
    # Bytes tracemalloc counts, not time.
    import tracemalloc

    frames = [Image.fromarray(picture(96, 128, seed=i)) for i in range(16)]
    frames[0].save(tmp_path / "a.png", save_all=True, append_images=frames[1:], duration=50)
    jobs = plan_jobs(tmp_path / "a.png", tmp_path / "b.png").jobs
    # One proc worker: two at once each hold a window's floats (590 kB here) when their
    # frames overlap, a peak of 4.7-4.8 MB in 8 of 60 runs, the same before and after
    # the frames' handling changed: the concurrency's, not frames held twice.
    up = Upscaler(MODEL, device=-1, threads=1)
    tracemalloc.start()
    try:
        summary = Pipeline([Lane(up, 1)]).run(jobs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        up.close()
    assert summary.ok == 1 and read_frames(tmp_path / "b.png")[0].frames[0].shape == (192, 256, 3)
    output = 16 * 192 * 256 * 3
    assert peak < 2 * output, (peak, output)


@pytest.mark.parametrize("wrong, said", [(lambda: None, "too many positional arguments"),
                                         (lambda done: None, "too many positional arguments"),
                                         (lambda done, total, what: None, "missing a required argument: 'what'")])
def test_an_on_tile_that_cannot_take_done_and_total_is_refused_as_the_pipeline_is_made(wrong, said):
    # found by a library audit: each picture failed at run time, after its upscale,
    # with a TypeError from on_tile, where an Upscaler's progress is refused up front.
    with pytest.raises(SettingError) as refused:
        Pipeline([Lane(SlowFake(0), 1)], on_tile=wrong)
    assert str(refused.value) == f"on_tile must be a function of (done, total), or None, got {describe(wrong)}: {said}"
    for fine in (None, lambda done, total: None, lambda *a: None, print):
        Pipeline([Lane(SlowFake(0), 1)], on_tile=fine)


def test_plan_jobs_notes_name_its_arguments_to_the_library(tmp_path):
    # plan_jobs' caller gave fmt=, suffix= and recursive=, and its notes named the
    # command's -f, --suffix and -r.
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "in.png")
    plan = plan_jobs(tmp_path / "in.png", tmp_path / "o.png", "jpeg", recursive=True, suffix="_x")
    assert plan.notes == (f"fmt='jpeg' ignored: {tmp_path / 'o.png'} is written as png, as its extension says",
                          f"suffix='_x' ignored: the output is named, {tmp_path / 'o.png'}",
                          f"recursive=True ignored: {tmp_path / 'in.png'} is not a folder")
