"""Device choice and tile-size policy: no device needed."""
import logging
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest

from ncnn_sr import devices, openmp


def fake_gpu(index, kind):
    return devices.Device(index, f"gpu{index}", kind, 4096)


def test_auto_picks_the_default_hardware_gpu():
    found = [fake_gpu(0, "integrated"), fake_gpu(1, "discrete")]
    assert devices.auto_choice(found, 1) == (found[1], None)
    assert devices.auto_choice(found, None) == (found[0], None)


def test_auto_never_picks_a_software_vulkan_device(caplog, monkeypatch):
    assert devices.auto_choice([fake_gpu(0, "cpu"), fake_gpu(1, "integrated")], 0)[0].index == 1
    software = devices.auto_choice([fake_gpu(0, "cpu")], 0)
    assert software == (devices.CPU, "only a software Vulkan device (gpu0) found")
    monkeypatch.setattr(devices, "explain_auto", lambda: software)
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        assert devices.get_device("auto") is devices.CPU
    assert "only a software Vulkan device (gpu0) found: running on the CPU, which is faster" in caplog.text


def test_auto_without_vulkan_is_the_cpu_with_a_notice(caplog, monkeypatch):
    assert devices.auto_choice([], None) == (devices.CPU, "no Vulkan device found")
    monkeypatch.setattr(devices, "explain_auto", lambda: (devices.CPU, devices.NO_VULKAN))
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        assert devices.get_device("auto") is devices.CPU
    assert "no Vulkan device found: running on the CPU (slower)" in caplog.text


def test_the_auto_notice_is_logged_once_a_process_per_message(caplog, monkeypatch):
    # A library loop making an Upscaler(device="auto") per picture repeated it each time.
    chosen = (devices.CPU, "only a software Vulkan device (gpu0) found")
    monkeypatch.setattr(devices, "explain_auto", lambda: chosen)
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        for _ in range(3):
            assert devices.get_device("auto") is devices.CPU
        chosen = (devices.CPU, devices.NO_VULKAN)
        devices.get_device("auto")
        devices.get_device("auto")
    assert [r.getMessage() for r in caplog.records] == [
        "only a software Vulkan device (gpu0) found: running on the CPU, which is faster",
        "no Vulkan device found: running on the CPU (slower)"]


def test_auto_tile_follows_the_reference_heap_budget_table():
    assert [devices.gpu_auto_tile(mb) for mb in (4000, 1901, 1900, 600, 551, 550, 200, 191, 190, 10)] == \
        [200, 200, 100, 100, 100, 64, 64, 64, 32, 32]


def test_a_large_discrete_gpu_gets_larger_tiles_than_the_reference_gives():
    assert devices.gpu_auto_tile(143_000, discrete=True) == devices.gpu_auto_tile(16_000, discrete=True) == 400
    assert devices.gpu_auto_tile(15_999, discrete=True) == 200
    assert devices.gpu_auto_tile(143_000) == 200  # integrated GPUs and software devices share the host's memory


def test_cpu_auto_tile_is_whole_when_small_and_bounded_when_large():
    assert devices.cpu_auto_tile(64, 64, 60_000, 10, memory=8 << 30) == 0
    tile = devices.cpu_auto_tile(4000, 3000, 60_000, 10, memory=8 << 30)
    assert 32 <= tile and (tile + 20) ** 2 * 60_000 <= devices.CPU_TILE_MEMORY_CAP
    assert devices.cpu_auto_tile(4000, 3000, 60_000, 10, memory=1 << 20) == 32


def test_a_picture_that_fits_one_window_may_take_more_than_a_tile():
    side = 300  # its window is over the tile cap, within the whole-picture cap
    window = (side + 20) ** 2 * 14_000
    assert devices.CPU_TILE_MEMORY_CAP < window + (50 << 20) <= devices.CPU_WHOLE_MEMORY_CAP
    assert devices.cpu_auto_tile(side, side, 14_000, 10, memory=8 << 30, reserve=50 << 20) == 0
    # two calls at once split it, and a smaller machine halves what it has
    assert devices.cpu_auto_tile(side, side, 14_000, 10, memory=8 << 30, share=2) > 0
    assert devices.cpu_auto_tile(side, side, 14_000, 10, memory=2 << 30) > 0


def test_cpu_auto_tile_budget_is_shared_by_concurrent_calls():
    alone = devices.cpu_auto_tile(2000, 2000, 60_000, 10, memory=8 << 30)
    shared = devices.cpu_auto_tile(2000, 2000, 60_000, 10, memory=8 << 30, share=2)
    assert shared < alone
    assert 2 * (shared + 20) ** 2 * 60_000 <= devices.CPU_TILE_MEMORY_CAP



def test_cpu_auto_tile_counts_the_overlap_in_the_window():
    plain = devices.cpu_auto_tile(2000, 2000, 60_000, 10, memory=8 << 30)
    blended = devices.cpu_auto_tile(2000, 2000, 60_000, 10, memory=8 << 30, overlap=16)
    assert blended < plain
    assert (blended + 16 + 20) ** 2 * 60_000 <= devices.CPU_TILE_MEMORY_CAP


def test_the_cpu_and_integrated_gpus_compute_in_host_memory():
    assert devices.CPU.host_memory
    assert fake_gpu(0, "integrated").host_memory and fake_gpu(0, "cpu").host_memory
    assert not fake_gpu(0, "discrete").host_memory and not fake_gpu(0, "virtual").host_memory


def test_a_device_that_is_no_whole_number_is_a_device_error():
    # int() made 1.5 GPU 1 and False GPU 0; None and nan were bare TypeError/ValueError.
    for spec in (1.5, -1.5, False, True, None, float("nan"), b"0"):
        with pytest.raises(devices.DeviceError, match="give auto, cpu, -1 or a device index"):
            devices.get_device(spec)


@pytest.mark.parametrize("text, index", [
    ("gpu0", 0), ("GPU 0", 0), ("gpu:1", 1), (" Gpu 12 ", 12), ("GPU:0", 0), ("cpu", -1), ("CPU", -1),
    ("-1", -1), ("3", 3),
    ("gpu", None), ("gpu-1", None), ("gpu -1", None), ("gpux", None), ("gpu0,1", None), ("gpu 1.5", None),
    ("auto", None), ("", None), ("0 (llvmpipe)", None), ("0_0", None), ("\u0660", None), ("gpu\u0660", None),
])
def test_a_gpu_is_named_as_str_of_a_device_writes_it_or_by_its_index(text, index):
    # str(Device) says "GPU 0", and get_device("GPU 0"), "gpu0" and "gpu:0" were refused.
    assert devices.named_index(text) == index


def test_get_device_takes_a_gpu_by_name(monkeypatch):
    monkeypatch.setattr(devices, "gpu_device", lambda index: fake_gpu(index, "discrete"))
    assert [devices.get_device(spec).index for spec in ("gpu0", "GPU 1", "gpu:2", "cpu", "-1")] == [0, 1, 2, -1, -1]
    assert str(devices.get_device(str(fake_gpu(1, "discrete")).split(" (")[0])) == "GPU 1 (gpu1)"
    with pytest.raises(devices.DeviceError) as refused:
        devices.get_device("gpu one")
    assert str(refused.value) == "invalid gpu device 'gpu one': give auto, cpu, -1 or a device index (0 or gpu0)"


def test_get_device_takes_the_whole_str_of_a_device():
    # get_device(str(list_devices()[0])) was refused: only "GPU 0", its start, was taken.
    for device in devices.list_devices():
        assert devices.get_device(str(device)) == device
        assert devices.get_device(f" {str(device).lower()} ") == device


@pytest.mark.parametrize("text, parts", [
    ("0,1", ["0", "1"]),
    ("-1,cpu,", ["-1", "cpu", ""]),
    ("GPU 0 (llvmpipe (LLVM 15.0.6, 256 bits)),cpu", ["GPU 0 (llvmpipe (LLVM 15.0.6, 256 bits))", "cpu"]),
    ("gpu1 (Radeon (a, b), c), 0", ["gpu1 (Radeon (a, b), c)", " 0"]),
    ("GPU 0 (odd) name), 1", ["GPU 0 (odd) name)", " 1"]),
])
def test_a_list_of_devices_is_cut_at_the_commas_outside_a_devices_name(text, parts):
    # GPU names hold commas ("llvmpipe (LLVM 15.0.6, 256 bits)"), always inside the
    # brackets of the str() of a Device.
    assert devices.split_specs(text) == parts


def test_get_device_refuses_a_str_of_a_device_whose_name_is_not_that_gpus(monkeypatch):
    # Written on another machine, "GPU 0 (its card)" would run on whatever GPU 0 is here.
    monkeypatch.setattr(devices, "gpu_device", lambda index: fake_gpu(index, "discrete"))
    with pytest.raises(devices.DeviceError) as refused:
        devices.get_device("GPU 1 (Radeon)")
    assert str(refused.value) == "invalid gpu device 'GPU 1 (Radeon)': GPU 1 here is gpu1, not Radeon"


def test_a_device_name_with_a_line_break_is_refused_in_one_line():
    # found by a bug hunt: the message held the name as given, over two lines
    with pytest.raises(devices.DeviceError) as refused:
        devices.get_device("gp\nu")
    assert str(refused.value).startswith("invalid gpu device 'gp\\nu': ")


def test_a_device_that_is_no_name_or_index_is_named_by_its_type_in_one_line():
    # found by a library audit: an array's repr was printed whole, over many lines
    with pytest.raises(devices.DeviceError) as refused:
        devices.get_device(np.zeros((2, 2)))
    assert str(refused.value).startswith("invalid gpu device an object of type ndarray: ")
    assert "\n" not in str(refused.value)


def test_a_device_made_by_hand_for_a_gpu_that_is_not_there_is_a_device_error(monkeypatch):
    # ncnn ran it on its default GPU without a word.
    monkeypatch.setattr(devices, "gpu_count", lambda: 1)
    assert devices.get_device(fake_gpu(0, "discrete")).index == 0
    with pytest.raises(devices.DeviceError, match="invalid gpu device 5"):
        devices.get_device(fake_gpu(5, "discrete"))


@pytest.mark.parametrize("count, have", [(0, "no Vulkan device"), (1, "only Vulkan device 0"),
                                         (3, "Vulkan devices 0..2")])
def test_a_gpu_index_not_there_names_the_devices_there_in_plain_words(monkeypatch, count, have):
    # One GPU read "Vulkan devices 0..0".
    from ncnn_sr import batch_cli

    monkeypatch.setattr(devices, "gpu_count", lambda: count)
    with pytest.raises(devices.DeviceError) as refused:
        devices.get_device(5)
    assert str(refused.value) == f"invalid gpu device 5: this machine has {have} (use -1 for the CPU)"
    assert batch_cli._device_hint() == f"this machine has {have}; -1 is the CPU"


def test_a_device_with_fields_of_other_types_is_a_device_error():
    for index, budget in (("0", 4096), (None, None), (0, "4096"), (True, 4096)):
        with pytest.raises(devices.DeviceError, match="must be whole numbers"):
            devices.Device(index, "gpu", "discrete", budget)


def test_a_device_made_with_numpy_integers_holds_python_ints():
    # found by a bug hunt: a heap budget of np.int16(3000) raised OverflowError in the
    # engine's heap arithmetic (np.int32 wrapped silently)
    import numpy as np

    d = devices.Device(np.int8(0), "gpu", "discrete", np.int16(3000))
    assert type(d.index) is int and type(d.heap_budget_mb) is int
    assert d.heap_budget_mb * 2**20 == 3000 << 20


@pytest.mark.parametrize("name, kind, said", [("gpu", "intergrated", "kind must be one of discrete, integrated, "
                                                                      "virtual, cpu, unknown, got 'intergrated'"),
                                              ("gpu", "Discrete", "got 'Discrete'"), (None, "discrete", "name")])
def test_a_device_made_by_hand_with_a_kind_it_cannot_be_is_a_device_error(name, kind, said):
    # found by a bug hunt: a misspelt kind ran as a discrete GPU (windows in flight,
    # larger tiles, no staging) without a word
    with pytest.raises(devices.DeviceError, match=said):
        devices.Device(0, name, kind, 4096)


def test_a_cpu_given_a_heap_budget_says_the_cpu_has_none():
    with pytest.raises(devices.DeviceError, match=r"^the CPU \(index -1\) has no heap budget"):
        devices.Device(-1, "CPU", "cpu", 4096)


# ncnn's libgomp prints the settings it read as it loaded (OMP_DISPLAY_ENV=verbose).
_SPIN_SAID = re.compile(r"GOMP_SPINCOUNT = '(\d+)'")


def _spin_ncnn_read(env: dict, first: str = "ncnn_sr.devices") -> tuple[str, str]:
    """(the spin count ncnn's OpenMP runtime read, GOMP_SPINCOUNT in os.environ after
    loading), in a fresh Python that imports ``first`` with ``env`` added."""
    clean = {k: v for k, v in os.environ.items() if k not in openmp.USER_SETTINGS}
    code = f"import os, {first}; print(os.environ.get('GOMP_SPINCOUNT'))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**clean, **env, "OMP_DISPLAY_ENV": "verbose"})
    assert run.returncode == 0, run.stderr
    said = _SPIN_SAID.search(run.stderr)
    if said is None:
        pytest.skip("this ncnn's OpenMP runtime is not GNU libgomp")
    return said.group(1), run.stdout.strip()


@pytest.mark.parametrize("first", ["ncnn_sr.devices", "ncnn_sr.network", "ncnn_sr.engine"])
def test_ncnn_loads_with_short_openmp_spins_leaving_the_environment_as_it_was(first):
    # libgomp's default (300000) made a call 10-40 times as slow on cores other
    # programs kept busy (tools/omp_wait.py).
    assert _spin_ncnn_read({}, first) == (openmp.SPIN_COUNT, "None")


@pytest.mark.parametrize("env, spin", [({"GOMP_SPINCOUNT": "300000"}, "300000"),
                                       ({"OMP_WAIT_POLICY": "passive"}, "0")])
def test_the_users_openmp_wait_setting_is_kept(env, spin):
    assert _spin_ncnn_read(env)[0] == spin


def test_the_vulkan_instance_of_the_parent_is_refused_in_a_forked_child(gpu):
    from test_engine import run_forked

    # A GPU Upscaler made in the child waited for ever.
    out = run_forked("list_devices()", "Upscaler('realesr-animevideov3-x2', device=0).upscale(img)")
    assert "child refused: DeviceError the Vulkan instance was made in the parent of this forked process" in out
    assert "child status 0" in out


def test_a_gpu_upscaler_runs_in_a_child_forked_after_the_parent_used_the_cpu_alone(gpu):
    from test_engine import run_forked

    # found by a README audit: it said a new Upscaler on a GPU is refused in any child
    # whose parent had used ncnn. Only the Vulkan instance, or threads the parent's
    # ncnn ran, do not cross the fork: a parent that ran one CPU thread leaves the child
    # free to make its own instance, and one that ran two leaves it threads=1.
    out = run_forked("Upscaler('realesr-animevideov3-x2', device=-1, threads=1).upscale(img)",
                     "Upscaler('realesr-animevideov3-x2', device=0).upscale(img)")
    assert "child ran" in out and "child status 0" in out
    parent = "Upscaler('realesr-animevideov3-x2', device=-1, threads=2).upscale(img)"
    out = run_forked(parent, "Upscaler('realesr-animevideov3-x2', device=0, threads=2).upscale(img)")
    assert "child refused: DeviceError ncnn ran OpenMP threads in the parent of this forked process" in out
    out = run_forked(parent, "Upscaler('realesr-animevideov3-x2', device=0, threads=1).upscale(img)")
    assert "child ran" in out and "child status 0" in out


def test_a_child_forked_after_the_vulkan_instance_was_made_ends_with_its_own_status(gpu):
    from test_engine import run_forked

    # A child that ended as Python does, not by os._exit, waited for ever in ncnn's own
    # teardown of the instance (lavapipe's vkDestroyDevice, for its threads left in the
    # parent), until its alarm killed it.
    out = run_forked("Upscaler('realesr-animevideov3-x2', device=0).upscale(img)", "pass", child_exit="sys.exit(5)")
    assert "child ran" in out and f"child status {5 << 8}" in out


def test_native_output_is_captured_where_python_has_no_standard_error(monkeypatch):
    # Under pythonw (a GUI's Python on Windows), or started with fd 2 closed, Python has
    # sys.stderr None: loading any model failed with an AttributeError.
    monkeypatch.setattr(sys, "stderr", None)
    with devices.captured_stderr() as said:
        os.write(2, b"a native complaint\n")
        assert said() == "a native complaint\n"


@pytest.mark.parametrize("pread", [True, False], ids=["pread", "no-pread"])
def test_nested_captures_that_hand_back_give_each_line_once(capfd, monkeypatch, pread):
    # The inner one hands back its part first; the outer one the rest, around it.
    if not pread:
        monkeypatch.delattr(os, "pread", raising=False)
    with devices.captured_stderr(hand_back=True):
        os.write(2, b"before\n")
        with devices.captured_stderr(hand_back=True):
            os.write(2, b"inside\n")
        os.write(2, b"after\n")
        assert capfd.readouterr().err == "inside\n"
    assert capfd.readouterr().err == "before\nafter\n"


def test_a_capture_that_hands_back_leaves_out_what_a_capture_beside_it_keeps(capfd):
    # A model loaded while another thread made the Vulkan instance handed back ncnn's
    # block of device details, which that capture keeps from the terminal; and a load
    # that failed beside another had its words in its error and on fd 2 too.
    quiet_in, loud_out = threading.Event(), threading.Event()

    def quiet():
        with devices.captured_stderr():
            os.write(2, b"kept\n")
            quiet_in.set()
            loud_out.wait(10)
            os.write(2, b"kept too\n")

    def failed():
        with devices.captured_stderr(hand_back=True) as said:
            os.write(2, b"its error\n")
            assert said() == "its error\n"

    with devices.captured_stderr(hand_back=True):
        os.write(2, b"before\n")
        failed()
        thread = threading.Thread(target=quiet)
        thread.start()
        quiet_in.wait(10)
    loud_out.set()
    thread.join(10)
    assert capfd.readouterr().err == "before\n"


@pytest.mark.parametrize("pread", [True, False], ids=["pread", "no-pread"])
def test_captures_of_native_output_that_overlap_in_two_threads_give_fd_2_back(capfd, monkeypatch, pread):
    # Loads in two threads at once (a Pipeline's lanes, a library user's threads) each
    # took fd 2 and gave back what it found: the one that began second and ended last
    # gave back the first one's capture, a deleted file, and every later line of the
    # process (errors, warnings, progress) went into it. (Windows has no os.pread.)
    if not pread:
        monkeypatch.delattr(os, "pread", raising=False)
    before = os.fstat(2)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    heard = {}

    def first():
        with devices.captured_stderr() as said:
            os.write(2, b"first\n")
            first_in.set()
            second_in.wait(10)
            heard["first"] = said()
        first_out.set()

    def second():
        first_in.wait(10)
        with devices.captured_stderr() as said:
            second_in.set()
            first_out.wait(10)
            os.write(2, b"second\n")
            heard["second"] = said()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
    assert heard == {"first": "first\n", "second": "second\n"}
    os.write(2, b"heard\n")
    assert capfd.readouterr().err == "heard\n"


# Eight threads that each allocate, and wait together, after steady_heap under a cap of
# the process's own on its address space (ulimit -v; one of 64 GB where none is set):
# how many MB of address space they took, on stdout.
_THREADS_UNDER_A_CAP = """
import ctypes, resource, threading
from ncnn_sr import devices

soft, hard = resource.getrlimit(resource.RLIMIT_AS)
if soft == resource.RLIM_INFINITY:
    resource.setrlimit(resource.RLIMIT_AS, (64 << 30, hard))
devices.steady_heap()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p

def size():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize:")) << 10

threading.stack_size(256 << 10)
ready, done = threading.Barrier(9), threading.Event()

def allocate():
    libc.malloc(64)
    ready.wait()
    done.wait()

before = size()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
ready.wait()
print((size() - before) >> 20)
done.set()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's arenas, counted in Linux's /proc")
def test_threads_under_a_cap_on_the_address_space_share_the_heaps_arenas():
    # glibc gives each thread that allocates an arena of its own, up to 8 a core, each
    # reserving 64 MB of address space it never touches, which a cap (ulimit -v) counts:
    # upscaling a 256x256 picture with realesrgan-x4plus failed "even with 32px tiles"
    # under ulimit -v 800000 with 192 MB of them, and went through with two arenas.
    proc = subprocess.run([sys.executable, "-c", _THREADS_UNDER_A_CAP], capture_output=True, text=True,
                          timeout=60, check=True)
    assert int(proc.stdout) < 3 * 64, proc.stdout  # 514 MB with an arena each
