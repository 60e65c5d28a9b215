"""What differs on Windows and macOS, simulated here: functions and modules those
systems lack are taken away, and the code must take its other way."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ncnn_sr import InputError, bench, budget, errors, files as files_mod, streams


def test_atomic_write_works_without_fchmod(tmp_path, monkeypatch):
    # Windows has no os.fchmod before Python 3.13: every picture's write failed there.
    monkeypatch.delattr(os, "fchmod")
    target = tmp_path / "a.png"
    files_mod.atomic_write(target, lambda f: f.write(b"whole"))
    assert target.read_bytes() == b"whole"
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


@pytest.mark.parametrize("name", ["CON", "conout$", r"C:\work\Con.png", "con .txt"])
def test_a_windows_console_name_is_a_terminal(name, monkeypatch):
    monkeypatch.setattr(streams, "_WINDOWS", True)
    assert streams._terminal(name, reading=False)


def test_nul_on_windows_is_no_terminal(monkeypatch):
    # Windows has no O_NONBLOCK (the check crashed on -o NUL), and its isatty holds
    # NUL for a terminal: the picture was refused as sent to one.
    monkeypatch.setattr(streams, "_WINDOWS", True)
    monkeypatch.delattr(os, "O_NONBLOCK")
    monkeypatch.setattr(os, "isatty", lambda fd: True)
    assert not streams._terminal(os.devnull, reading=False)
    assert not streams._terminal("NUL", reading=False)


@pytest.mark.parametrize("console,terminal", [(True, True), (False, False)])
def test_standard_output_on_windows_is_a_terminal_only_where_it_is_the_console(console, terminal, monkeypatch):
    # Windows's isatty says so of NUL too: -o - > NUL was refused as sent to a terminal.
    import ctypes
    import types

    class Kernel32:
        def GetConsoleMode(self, handle, ref):
            assert handle.value == 1234
            return int(console)

    class Redirected:
        def isatty(self):
            return True

        def fileno(self):
            return 1

    monkeypatch.setattr(streams, "_WINDOWS", True)
    monkeypatch.setitem(sys.modules, "msvcrt", types.SimpleNamespace(get_osfhandle=lambda fd: 1234))
    monkeypatch.setattr(ctypes, "WinDLL", lambda name: Kernel32(), raising=False)
    monkeypatch.setattr(sys, "stdout", Redirected())
    assert streams._terminal(streams.STDIO, reading=False) is terminal


def test_memory_on_windows_comes_from_global_memory_status(monkeypatch):
    # Windows has neither /proc/meminfo nor sysconf: runs there guessed 4 GiB free,
    # and never refused a result too large for the machine.
    import ctypes

    class Kernel32:
        def GlobalMemoryStatusEx(self, ref):
            status = ref._obj
            assert status.dwLength == 64  # the size Windows checks
            status.ullTotalPhys, status.ullAvailPhys = 16 << 30, 5 << 30
            return 1

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(budget, "_linux_available", lambda: None)
    monkeypatch.delattr(os, "sysconf")
    monkeypatch.setattr(ctypes, "WinDLL", lambda name: Kernel32(), raising=False)
    assert budget.available_memory() == 5 << 30
    assert budget.memory_limit() == 5 << 30


def test_memory_status_record_has_windows_layout():
    import ctypes
    record = budget._memory_status_type()
    assert ctypes.sizeof(record) == 64
    assert record.ullAvailPhys.offset == 16 and record.ullAvailExtendedVirtual.offset == 56


def _mac_system(kern_return=0):
    """A stand-in for macOS's libSystem: a 16 KiB page, 30000 free and 50000 inactive
    pages; host_statistics64 answers ``kern_return``."""
    from types import SimpleNamespace

    def host_page_size(host, ref):
        assert host == 7
        ref._obj.value = 16384
        return 0

    def host_statistics64(host, flavor, ref, count):
        assert (host, flavor, count._obj.value) == (7, 4, 38)  # HOST_VM_INFO64, and its count of ints
        stats = ref._obj
        stats.free_count, stats.active_count, stats.inactive_count, stats.wire_count = 30000, 90000, 50000, 60000
        stats.purgeable_count = 1000
        return kern_return

    return SimpleNamespace(mach_host_self=lambda: 7, host_page_size=host_page_size,
                           host_statistics64=host_statistics64)


@pytest.mark.parametrize("kern_return,available", [(0, (30000 + 50000) * 16384), (5, 4 << 30)])
def test_memory_on_macos_comes_from_the_host_vm_statistics(kern_return, available, monkeypatch):
    # macOS's sysconf counts no available pages: runs there guessed 4 GiB free,
    # whatever the machine had.
    import ctypes
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(budget, "_linux_available", lambda: None)
    monkeypatch.delattr(os, "sysconf")
    opened = []
    monkeypatch.setattr(ctypes, "CDLL", lambda name: opened.append(name) or _mac_system(kern_return))
    budget._mach_host.cache_clear()
    try:
        assert budget.available_memory() == available
        assert budget.available_memory() == available
    finally:
        budget._mach_host.cache_clear()
    assert opened == ["/usr/lib/libSystem.B.dylib"]  # the host port is asked for once


def test_vm_statistics_record_has_macos_layout():
    import ctypes
    record = budget._vm_statistics64_type()
    assert ctypes.sizeof(record) == 152 and ctypes.alignment(record) == 8
    assert record.inactive_count.offset == 8 and record.purgeable_count.offset == 88


MiB = 1 << 20


def _cgroups(tmp_path, monkeypatch, membership, files, meminfo=64 << 30):
    """A machine of ``meminfo`` bytes available whose process is in the cgroups
    ``membership`` (/proc/self/cgroup's lines) and whose cgroup folders (v2's
    "unified/...", v1's "memory/...") hold ``files``, {path: text}."""
    (tmp_path / "cgroup").write_text(membership)
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    monkeypatch.setattr(budget, "PROC_CGROUP", str(tmp_path / "cgroup"))
    monkeypatch.setattr(budget, "CGROUP_V2", str(tmp_path / "unified"))
    monkeypatch.setattr(budget, "CGROUP_V1", str(tmp_path / "memory"))
    monkeypatch.setattr(budget, "_meminfo_available", lambda: meminfo)
    monkeypatch.setattr(budget, "PROC_STATUS", str(tmp_path / "status"))  # none: the shell's ulimit -v unread
    budget._cgroup_limits.cache_clear()


@pytest.fixture
def fresh_cgroups():
    """The cgroups found once a process are looked for again after the test."""
    yield
    budget._cgroup_limits.cache_clear()


def test_memory_in_a_container_is_what_its_cgroup_leaves(tmp_path, monkeypatch, fresh_cgroups):
    # docker run --memory 512m: /proc/meminfo is the host's, 64 GB available, and a
    # result that fitted there but not in the container was upscaled, and the run
    # killed by the kernel (exit 137, no word, its part file left) instead of the
    # one line naming the need. The room is the limit less what the cgroup uses,
    # its file cache (which the kernel drops before it kills) counted as room.
    _cgroups(tmp_path, monkeypatch, "0::/\n", {
        "unified/memory.max": "536870912\n",
        "unified/memory.current": f"{300 * MiB}\n",
        "unified/memory.stat": f"anon {150 * MiB}\nfile {150 * MiB}\nactive_file {50 * MiB}\n"
                               f"inactive_file {100 * MiB}\nslab 0\n"})
    assert budget.available_memory() == budget.memory_limit() == 362 * MiB
    assert budget.memory_limit_named() == (362 * MiB, "its container's or service's memory limit")


def test_memory_in_a_cgroup_v1_container_is_its_own_mount(tmp_path, monkeypatch, fresh_cgroups):
    # cgroup v1 without a cgroup namespace: /proc/self/cgroup names the host's path
    # (/docker/ID), while the container's own cgroup is mounted at the root.
    _cgroups(tmp_path, monkeypatch, "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n", {
        "memory/memory.limit_in_bytes": f"{1024 * MiB}\n",
        "memory/memory.usage_in_bytes": f"{1000 * MiB}\n",
        "memory/memory.stat": f"cache {90 * MiB}\nactive_file 0\ntotal_active_file {40 * MiB}\n"
                              f"total_inactive_file {50 * MiB}\n",
        "unified/cgroup.procs": "1\n"})
    assert budget.available_memory() == 114 * MiB


def test_the_lowest_limit_of_the_cgroups_above_wins(tmp_path, monkeypatch, fresh_cgroups):
    # A service's slice limits all its services together: its room, not the
    # service's own larger one, is what there is.
    _cgroups(tmp_path, monkeypatch, "0::/app.slice/sr.service\n", {
        "unified/app.slice/memory.max": f"{1024 * MiB}\n",
        "unified/app.slice/memory.current": f"{800 * MiB}\n",
        "unified/app.slice/memory.stat": "inactive_file 0\nactive_file 0\n",
        "unified/app.slice/sr.service/memory.max": f"{4096 * MiB}\n",
        "unified/app.slice/sr.service/memory.current": f"{100 * MiB}\n",
        "unified/app.slice/sr.service/memory.stat": "inactive_file 0\nactive_file 0\n"})
    assert budget.available_memory() == 224 * MiB


@pytest.mark.parametrize("files", [
    {"unified/memory.max": "max\n", "unified/memory.current": "1000\n", "unified/memory.stat": ""},
    {"memory/memory.limit_in_bytes": "9223372036854771712\n", "memory/memory.usage_in_bytes": "1000\n",
     "memory/memory.stat": ""},
    {}])
def test_a_cgroup_without_a_limit_leaves_the_machines_memory(files, tmp_path, monkeypatch, fresh_cgroups):
    _cgroups(tmp_path, monkeypatch, "4:memory:/\n0::/\n", files, meminfo=5 << 30)
    assert budget.available_memory() == budget.memory_limit() == 5 << 30


def test_a_limit_above_the_machines_memory_leaves_the_machines(tmp_path, monkeypatch, fresh_cgroups):
    _cgroups(tmp_path, monkeypatch, "0::/\n", {
        "unified/memory.max": f"{8192 * MiB}\n", "unified/memory.current": "0\n",
        "unified/memory.stat": ""}, meminfo=100 * MiB)
    assert budget.available_memory() == 100 * MiB


def test_cgroup_files_are_read_without_a_text_file(tmp_path, monkeypatch, fresh_cgroups):
    # Read 3 times a picture, as /proc/meminfo is (see test_per_picture_calls).
    import builtins
    _cgroups(tmp_path, monkeypatch, "0::/\n", {
        "unified/memory.max": f"{512 * MiB}\n", "unified/memory.current": f"{12 * MiB}\n",
        "unified/memory.stat": "inactive_file 0\n"})
    monkeypatch.setattr(builtins, "open", lambda *a, **k: pytest.fail("a file object made"))
    assert budget.available_memory() == 500 * MiB


def _capped(tmp_path, monkeypatch, caps, status):
    """A process whose soft limits are ``caps`` ({"RLIMIT_AS": bytes, ...}; the others
    unlimited) and whose /proc/self/status reads ``status`` (None: not there)."""
    import resource
    real = resource.getrlimit
    monkeypatch.setattr(resource, "getrlimit", lambda which: (
        next((soft for name, soft in caps.items() if getattr(resource, name) == which), resource.RLIM_INFINITY)
        if which in (resource.RLIMIT_AS, resource.RLIMIT_DATA) else real(which), resource.RLIM_INFINITY))
    if status is not None:
        (tmp_path / "status").write_text(status)


STATUS = f"Name:\tncnn-sr\nVmPeak:\t{900 << 10} kB\nVmSize:\t{512 << 10} kB\nVmData:\t{100 << 10} kB\nThreads:\t3\n"


@pytest.mark.parametrize("caps,available,why", [
    ({"RLIMIT_AS": 2048 * MiB}, 1536 * MiB, "ulimit -v"),  # ulimit -v 2097152: its cap less the 512 MB of VmSize
    ({"RLIMIT_DATA": 1024 * MiB}, 924 * MiB, "ulimit -d"),  # ulimit -d: less the 100 MB of VmData
    ({"RLIMIT_AS": 2048 * MiB, "RLIMIT_DATA": 1800 * MiB}, 1536 * MiB, "ulimit -v"),  # the lower room wins
    ({"RLIMIT_AS": 2048 * MiB, "RLIMIT_DATA": 1500 * MiB}, 1400 * MiB, "ulimit -d"),
    ({"RLIMIT_AS": 400 * MiB}, 0, "ulimit -v"),  # a cap lowered below what is mapped already leaves none
    ({"RLIMIT_AS": 128 << 30}, 64 << 30, ""),  # a cap above the machine's memory leaves the machine's
    ({}, 64 << 30, "")])
def test_memory_under_a_process_cap_is_what_the_cap_leaves(caps, available, why, tmp_path, monkeypatch,
                                                           fresh_cgroups):
    # ulimit -v (RLIMIT_AS): a result too large for the cap but not for the machine
    # was upscaled, and failed midway with "not enough memory for its result" (a
    # MemoryError) instead of the one line naming its need and what is available.
    # A refusal names the cap that leaves less than the machine has.
    _cgroups(tmp_path, monkeypatch, "0::/\n", {})
    _capped(tmp_path, monkeypatch, caps, STATUS)
    assert budget.available_memory() == budget.memory_limit() == available
    assert budget.memory_limit_named() == (available, why)


def test_a_cap_whose_use_is_unknown_leaves_the_machines_memory(tmp_path, monkeypatch, fresh_cgroups):
    # No /proc/self/status (not Linux, or a /proc not mounted): the cap less what? No guess.
    _cgroups(tmp_path, monkeypatch, "0::/\n", {}, meminfo=5 << 30)
    _capped(tmp_path, monkeypatch, {"RLIMIT_AS": 1 << 30}, None)
    assert budget.available_memory() == budget.memory_limit() == 5 << 30
    assert budget.memory_limit_named() == (5 << 30, "")
    _capped(tmp_path, monkeypatch, {"RLIMIT_AS": 1 << 30}, "Name:\tncnn-sr\nVmSize:\tmany kB\n")
    assert budget.available_memory() == 5 << 30
    assert budget.memory_limit_named() == (5 << 30, "")


def test_the_lower_of_a_cgroups_room_and_a_process_cap_wins(tmp_path, monkeypatch, fresh_cgroups):
    _cgroups(tmp_path, monkeypatch, "0::/\n", {
        "unified/memory.max": f"{1024 * MiB}\n", "unified/memory.current": f"{900 * MiB}\n",
        "unified/memory.stat": ""})
    _capped(tmp_path, monkeypatch, {"RLIMIT_AS": 2048 * MiB}, STATUS)
    assert budget.available_memory() == 124 * MiB
    assert budget.memory_limit_named() == (124 * MiB, "its container's or service's memory limit")
    _capped(tmp_path, monkeypatch, {"RLIMIT_AS": 600 * MiB}, STATUS)
    assert budget.available_memory() == 88 * MiB
    assert budget.memory_limit_named() == (88 * MiB, "ulimit -v")


def test_a_refusal_names_the_cap_or_cgroup_that_leaves_less_than_the_machine(tmp_path, monkeypatch, fresh_cgroups):
    # "needs about 5.9 GB of memory, more than the 3.8 GB available" puzzled a user
    # whose machine has 64 GB: where a cap (ulimit -v) or a cgroup's limit is what
    # leaves too little, the refusal says so.
    _cgroups(tmp_path, monkeypatch, "0::/\n", {})
    _capped(tmp_path, monkeypatch, {"RLIMIT_AS": 2048 * MiB}, STATUS)
    assert budget.room_words(1600 * MiB, 1536 * MiB) == "the 1.5 GB this process may still use (ulimit -v)"
    # Read again as it is worded: a figure the cap does not hold (one as a run began,
    # with what others hold beside it) is said as it was.
    assert budget.room_words(1000 * MiB, 900 * MiB) == "the 900 MB available"
    _capped(tmp_path, monkeypatch, {}, STATUS)
    assert budget.room_words(100 << 30, 64 << 30) == "the 64.0 GB available"
    _cgroups(tmp_path, monkeypatch, "0::/\n", {
        "unified/memory.max": f"{4096 * MiB}\n", "unified/memory.current": f"{200 * MiB}\n",
        "unified/memory.stat": ""})
    assert budget.room_words(6 << 30, 3900 * MiB) == \
        "the 3.8 GB this process may still use (its container's or service's memory limit)"


def test_a_process_cap_is_read_without_a_text_file(tmp_path, monkeypatch, fresh_cgroups):
    import builtins
    _cgroups(tmp_path, monkeypatch, "0::/\n", {})
    _capped(tmp_path, monkeypatch, {"RLIMIT_AS": 2048 * MiB}, STATUS)
    monkeypatch.setattr(builtins, "open", lambda *a, **k: pytest.fail("a file object made"))
    assert budget.available_memory() == 1536 * MiB


def test_bench_child_runs_without_wait4_and_process_groups(monkeypatch):
    # Windows has no os.wait4 (the peak memory came from it) nor os.killpg: every
    # bench row failed there with an AttributeError.
    monkeypatch.delattr(os, "wait4")
    monkeypatch.delattr(os, "killpg")
    run = bench.run_child([sys.executable, "-c", "print('done'); raise SystemExit(3)"])
    assert (run.returncode, run.stdout.strip(), run.rss_mb, run.timed_out) == (3, "done", None, False)
    slow = bench.run_child([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5)
    assert slow.timed_out and slow.returncode != 0


def test_a_name_the_output_encoding_cannot_spell_is_escaped(tmp_path):
    # Windows writes a redirected stdout in its code page (cp1252): a Japanese model
    # name in a listing was a UnicodeEncodeError and a traceback.
    (tmp_path / "模型-x2.param").write_text("7767517\n", encoding="utf-8")
    env = {**os.environ, "PYTHONIOENCODING": "cp1252"}
    proc = subprocess.run([sys.executable, "-c", "from ncnn_sr.entry import ncnn_sr; ncnn_sr()",
                           "models", "-m", str(tmp_path)], capture_output=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode("cp1252")
    assert b"\\u6a21\\u578b-x2" in proc.stdout


@pytest.mark.parametrize("name,fault", [
    ("a:b.png", "hold none of :"), ('a"b?.png', 'hold none of " ?'), ("a\tb.png", r"hold none of \t"),
    ("out.png.", "drops a dot or space"), ("out.png ", "drops a dot or space"),
    ("NUL.png", "NUL is a device's name"), ("CONOUT$.png", "CONOUT$ is a device's name"), ("com1", "com1 is a device's name"), ("Aux .jpg", "device's name"),
])
def test_names_windows_cannot_hold(name, fault):
    assert fault in files_mod.windows_name_fault(name)


@pytest.mark.parametrize("name", ["a.png", "nullish.png", "com10.png", "con-x4.png", ".hidden.png", "日本.png"])
def test_names_windows_holds(name):
    assert files_mod.windows_name_fault(name) is None


def test_an_output_windows_cannot_name_is_refused_there_before_any_write(tmp_path, monkeypatch):
    # "out:1.png" was a hidden stream of a file "out", and NUL.png the null device.
    monkeypatch.setattr(files_mod, "_WINDOWS", True)
    for name in ("out:1.png", "NUL.png"):
        with pytest.raises(InputError, match=f"cannot write .*{name}: "):
            files_mod.atomic_write(tmp_path / name, lambda f: f.write(b"x"))
    assert list(tmp_path.iterdir()) == []
    files_mod.atomic_write(tmp_path / "out.png", lambda f: f.write(b"x"))


def test_a_suffix_windows_cannot_name_is_refused_there_before_the_run(monkeypatch):
    import click
    from ncnn_sr import cli
    monkeypatch.setattr(files_mod, "_WINDOWS", True)
    with pytest.raises(click.BadParameter, match="hold none of :"):
        cli._suffix(None, None, ":x4")
    assert cli._suffix(None, None, "_x4") == "_x4"


def test_a_video_output_that_cannot_be_replaced_is_one_error_and_leaves_no_part(tmp_path, monkeypatch):
    # Windows refuses to replace a file open in another program (a player): the
    # rename's PermissionError went up as a traceback.
    from media import make_clip
    from ncnn_sr import video

    clip = make_clip(tmp_path / "in.mp4", frames=2, width=16, height=16, audio=None)
    (tmp_path / "out.mp4").write_bytes(b"being played")

    def refused(src, dst):
        raise PermissionError(13, "Access is denied", os.fspath(dst))
    monkeypatch.setattr(video.os, "replace", refused)
    with pytest.raises(InputError, match=r"cannot write .*out\.mp4: Access is denied"):
        video.upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]
    assert (tmp_path / "out.mp4").read_bytes() == b"being played"


def _text_opens_without_encoding(path):
    """(line, call) of each open(), read_text() and write_text() in ``path`` that opens
    text without saying its encoding: Windows reads and writes those in its code page."""
    import ast
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        keywords = {k.arg for k in node.keywords}
        if "encoding" in keywords:
            continue
        if name in ("read_text", "write_text"):
            found.append((node.lineno, name))
        elif name == "open" and (isinstance(func, ast.Name) or getattr(func.value, "id", None) == "io"):
            mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"),
                                                                None)
            modes = [mode.body, mode.orelse] if isinstance(mode, ast.IfExp) else [mode]  # "ab" if done else "wb"
            if not all(isinstance(m, ast.Constant) and "b" in m.value for m in modes):
                found.append((node.lineno, name))
    return found


def test_every_text_file_is_opened_with_its_encoding():
    root = Path(__file__).resolve().parent.parent
    unsaid = {f"{path.relative_to(root)}:{line}": call
              for folder in ("ncnn_sr", "tools") for path in sorted((root / folder).glob("*.py"))
              for line, call in _text_opens_without_encoding(path)}
    assert unsaid == {}


_WITHOUT_POSIX = """
import importlib, os, pkgutil, signal, sys
for name in ("fcntl", "resource", "termios", "pwd", "grp", "pty", "tty", "curses", "readline"):
    sys.modules[name] = None  # import fails, as on Windows
for name in ("sched_getaffinity", "fork", "register_at_fork", "getuid", "geteuid", "statvfs", "fchmod", "wait4",
             "killpg", "sysconf", "O_NONBLOCK", "O_NOFOLLOW", "O_CLOEXEC", "setsid", "fchown", "chown", "sync"):
    if hasattr(os, name):
        delattr(os, name)
for name in ("SIGHUP", "SIGPIPE", "SIGUSR1", "SIGUSR2", "SIGQUIT", "SIGKILL", "SIGALRM", "SIGCHLD", "SIGXCPU"):
    if hasattr(signal, name):
        delattr(signal, name)
import ncnn_sr
from ncnn_sr.signals import stop_signals
failed = []
for module in pkgutil.iter_modules(ncnn_sr.__path__):
    if module.name != "__main__":
        try:
            importlib.import_module(f"ncnn_sr.{module.name}")
        except Exception as e:
            failed.append(f"{module.name}: {e!r}")
assert not failed, failed
assert stop_signals() == [signal.SIGINT, signal.SIGTERM]
"""


def test_every_module_imports_without_what_windows_lacks():
    proc = subprocess.run([sys.executable, "-c", _WITHOUT_POSIX], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


_POWERSHELL_MODULES = r"C:\Users\José\Documents\WindowsPowerShell\Modules;C:\Program Files\WindowsPowerShell\Modules"
_SYSTEM_MODULES = r"C:\Program Files\WindowsPowerShell\Modules;C:\WINDOWS\system32\WindowsPowerShell\v1.0\Modules"


def _windows_shell(monkeypatch, modules):
    monkeypatch.setattr(errors, "_WINDOWS", True)
    monkeypatch.setenv("USERPROFILE", r"C:\Users\José")
    if modules is None:
        monkeypatch.delenv("PSModulePath", raising=False)
    else:
        monkeypatch.setenv("PSModulePath", modules)


@pytest.mark.parametrize("text,word", [
    (r"C:\in.png", r"C:\in.png"), (r"C:\My Pictures\a.png", r'"C:\My Pictures\a.png"'), ("a&b.png", '"a&b.png"'),
    ("", '""'), ("C:\\Ünïcödé\\写真.png", "C:\\Ünïcödé\\写真.png"), ("Bob’s pic.png", '"Bob’s pic.png"'),
    # cmd expands %PATH% inside double quotes too; it leaves %"PATH"%, a name no variable has.
    (r"C:\a %PATH% b.png", r'"C:\a "%"PATH"%" b.png"'), ("%PATH%", '%"PATH"%'), ("100%%.png", '"100"%""%".png"'),
    # $ and ` are nothing to cmd.
    ("$env:x.png", '"$env:x.png"'), ("a`b.png", '"a`b.png"'),
    # The C runtime reads \" as a quote: a backslash before the closing quote is doubled.
    ("C:\\My Dir\\", '"C:\\My Dir\\\\"'), ('say "hi"', '"say \\"hi\\""'),
])
def test_a_word_offered_for_cmd_is_double_quoted_with_percent_signs_outside(text, word, monkeypatch):
    # shlex quoted C:\in.png as 'C:\in.png', whose quotes cmd keeps as part of the path.
    _windows_shell(monkeypatch, _SYSTEM_MODULES)
    assert errors.shell_word(text) == word


def test_a_quoted_windows_word_ending_in_a_backslash_doubles_it_before_the_quote(monkeypatch):
    # A program's argument parser reads \" as a quote within the word: "C:\My Models\"
    # ran on into the next word.
    monkeypatch.setattr(errors, "_WINDOWS", True)
    assert errors.shell_word("C:\\My Models\\") == '"C:\\My Models\\\\"'
    assert errors.shell_word("C:\\models\\") == "C:\\models\\"  # unquoted, nothing to escape


@pytest.mark.parametrize("text,word", [
    (r"C:\in.png", r"C:\in.png"), (r"C:\My Pictures\a.png", r"'C:\My Pictures\a.png'"), ("", "''"),
    ("C:\\写真 1.png", "'C:\\写真 1.png'"), (r"C:\a %PATH% b.png", r"'C:\a %PATH% b.png'"),
    # PowerShell's double quotes expand $env:x and read ` as an escape; its single quotes do not.
    ("$env:x.png", "'$env:x.png'"), ("a`b.png", "'a`b.png'"), ('say "hi"', "'say \"hi\"'"),
    # A quote, typographic ones too, is doubled inside single quotes.
    ("Bob's pic.png", "'Bob''s pic.png'"), ("Bob’s pic.png", "'Bob’’s pic.png'"),
    # Windows PowerShell hands 'C:\My Dir\' on as "C:\My Dir\", whose \" the program reads as a quote.
    ("C:\\My Dir\\", "'C:\\My Dir\\\\'"), ("C:\\Dir$\\", "'C:\\Dir$\\'"),
])
def test_a_word_offered_for_powershell_is_single_quoted(text, word, monkeypatch):
    _windows_shell(monkeypatch, _POWERSHELL_MODULES)
    assert errors.shell_word(text) == word


@pytest.mark.parametrize("modules,powershell", [(_POWERSHELL_MODULES, True), (_POWERSHELL_MODULES.lower(), True),
                                                (_SYSTEM_MODULES, False), (None, False)])
def test_powershell_is_told_by_its_user_module_folder(modules, powershell, monkeypatch):
    # Windows sets PSModulePath for cmd as well; PowerShell adds the user's own folder.
    _windows_shell(monkeypatch, modules)
    assert errors._in_powershell() is powershell


def test_the_command_offered_for_files_given_without_flags_is_one_windows_takes(monkeypatch):
    from click.testing import CliRunner
    from ncnn_sr import cli
    _windows_shell(monkeypatch, _SYSTEM_MODULES)
    result = CliRunner().invoke(cli.main, [r"C:\My Pictures\in.png", r"D:\out.png"])
    assert result.exit_code == 2
    assert r'use -i/-o: main -i "C:\My Pictures\in.png" -o D:\out.png' in result.output
    _windows_shell(monkeypatch, _POWERSHELL_MODULES)
    result = CliRunner().invoke(cli.main, [r"C:\My Pictures\in.png", r"D:\out.png"])
    assert r"use -i/-o: main -i 'C:\My Pictures\in.png' -o D:\out.png" in result.output


@pytest.mark.parametrize("platform,name", [("win32", "vulkan-1.dll"), ("darwin", "libvulkan.1.dylib"),
                                           ("linux", "libvulkan.so.1")])
def test_the_vulkan_loader_has_its_systems_name(platform, name, monkeypatch):
    # On Windows find_library("vulkan") looks for vulkan.dll, and the bench's device
    # memory was never measured there.
    import ctypes.util
    from ncnn_sr import gpu_memory
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert gpu_memory.loader_name() == name


def test_ctrl_break_on_windows_stops_a_command_as_ctrl_c_does(monkeypatch):
    import signal
    from ncnn_sr.signals import stop_signals
    for unix_only in ("SIGHUP", "SIGXCPU"):
        monkeypatch.delattr(signal, unix_only)
    monkeypatch.setattr(signal, "SIGBREAK", signal.SIGUSR1, raising=False)  # a number Python can ask about here
    monkeypatch.setattr(signal, "getsignal", lambda sig: signal.SIG_DFL)
    assert stop_signals() == [signal.SIGINT, signal.SIGTERM, signal.SIGUSR1]


@pytest.mark.parametrize("name", ["anime:v2", "model?", "NUL", "aux"])
def test_a_model_name_windows_cannot_hold_is_refused_there_before_a_conversion(name, tmp_path, monkeypatch):
    from ncnn_sr import ModelError, convert
    monkeypatch.setattr(files_mod, "_WINDOWS", True)
    with pytest.raises(ModelError, match="a model's name must be a file name this system can hold"):
        convert.check_target(tmp_path, name)
    convert.check_target(tmp_path, "anime-v2")


def test_a_temporary_name_on_windows_stays_short_where_the_path_is_long(monkeypatch):
    # Windows opens no path of 260 characters or more by default: a picture whose own
    # path fitted (250) failed through its temporary name (265), "No such file".
    folder, name = "C" * 150, "n" * 80 + ".png"
    assert files_mod.temp_stem(name, folder) == name
    monkeypatch.setattr(files_mod, "_WINDOWS", True)
    short = files_mod.temp_stem(name, folder)
    assert short.startswith("~") and len(short) == 13
    assert files_mod.temp_stem("a.png", "C") == "a.png"


def test_a_short_name_in_a_long_windows_path_keeps_its_own_temporary_name(monkeypatch):
    # Its hash is longer than itself: a.png's temporary name went past the limit that
    # its own kept within (a folder of 235 characters).
    monkeypatch.setattr(files_mod, "_WINDOWS", True)
    assert files_mod.temp_stem("a.png", "C:" + "d" * 233) == "a.png"


def test_a_write_past_windows_path_limit_says_so(monkeypatch):
    monkeypatch.setattr(errors, "_WINDOWS", True)
    long_target = "/" + "d" * 120 + "/" + "n" * 140 + ".png"
    said = str(errors.cannot_write(long_target, FileNotFoundError(2, "No such file or directory")))
    assert said.endswith("No such file or directory (the path is 260 characters or longer: shorten it, or enable "
                         "Windows's long paths)")
    assert str(errors.cannot_write("/a.png", FileNotFoundError(2, "No such file or directory"))).endswith("directory")


def test_a_model_below_a_non_ascii_folder_is_read_by_python_where_fopen_cannot_open_it(tmp_path, monkeypatch):
    # ncnn opens its files with fopen, which on Windows reads a path in the ANSI code
    # page: a model below C:\Users\José was not found there.
    import shutil
    import numpy as np
    from conftest import picture
    from ncnn_sr import Upscaler, network, resolve_model

    spec = resolve_model("realesr-animevideov3-x2")
    folder = tmp_path / "José 模型"
    folder.mkdir()
    shutil.copy(spec.param_path, folder / "anime-x2.param")
    shutil.copy(spec.bin_path, folder / "anime-x2.bin")
    monkeypatch.setattr(network, "_FOPEN_TAKES_UTF8", False)
    read_by_python, said = network._read_by_python, []
    monkeypatch.setattr(network, "_read_by_python", lambda path: said.append(read_by_python(path)) or said[-1])
    image = picture(20, 24)
    with Upscaler(str(folder / "anime-x2.param"), device=-1) as mine:
        with Upscaler(spec.name, device=-1) as packaged:  # an ASCII path goes to ncnn as it is
            assert np.array_equal(mine.upscale(image), packaged.upscale(image))
    assert said == [True, False]


def test_without_flock_a_picture_is_written_through_the_descriptor_its_part_was_made_with(tmp_path, monkeypatch):
    # Where there is no flock (Windows), the part was closed once made and opened again
    # by its name: os.open there opens in text mode unless told O_BINARY, and each
    # \n written became \r\n, every picture corrupt. It is opened once, by mkstemp.
    from ncnn_sr import part_files

    monkeypatch.setattr(part_files, "fcntl", None)
    opened, real_open = [], os.open
    monkeypatch.setattr(os, "open", lambda path, *args, **kwargs: opened.append(os.fspath(path)) or
                        real_open(path, *args, **kwargs))
    whole = bytes(range(256)) * 4
    files_mod.atomic_write(tmp_path / "a.png", lambda f: f.write(whole))
    assert (tmp_path / "a.png").read_bytes() == whole
    parts = [Path(p).name for p in opened if Path(p).parent == tmp_path]
    assert len(parts) == 1 and parts[0].startswith(".a.png.") and parts[0].endswith(".part"), opened


@pytest.mark.parametrize("count, said", [(0, "0 bytes"), (1, "1 byte"), (1000, "1000 bytes"), (1023, "1023 bytes"),
                                         (1024, "1 kB"), (20736, "20 kB"), (MiB, "1.0 MB"), (12 * MiB, "12 MB"),
                                         (3 << 30, "3.0 GB")])
def test_an_amount_of_memory_below_a_kb_is_said_in_bytes_not_as_none(count, said):
    # An audit's: Pipeline(animation_memory=1000) refused an animation as needing
    # "more than the 0 kB animations may take".
    assert budget.size_words(count) == said


@pytest.mark.parametrize("need, room, said", [
    (20736, 20735, ("21 kB", "20 kB")), (MiB + 1, MiB, ("1.1 MB", "1.0 MB")), (MiB, MiB - 1, ("1.0 MB", "1023 kB")),
    ((1 << 30) + 5 * (1 << 20), (1 << 30) + 4 * (1 << 20), ("1.1 GB", "1.0 GB")),
    (int(1.27 * 2**30), int(1.26 * 2**30), ("1.3 GB", "1.2 GB")), (2**20 - 100, 2**20 - 200, ("1.0 MB", "1023 kB")),
    (10 * MiB + 1, 10 * MiB, ("11 MB", "10 MB")), (1001, 1000, ("1001 bytes", "1000 bytes"))])
def test_a_need_more_than_a_room_reads_larger_than_it(need, room, said):
    # An audit's: "need about 20 kB of memory, more than the 20 kB animations may
    # take" (20736 bytes against 20735) read as if nothing were short.
    assert (budget.size_words(need, up=True), budget.size_words(room, down=True)) == said
    # and as mb_words says them, MB where either is one or more
    up, down = budget.mb_words(need, up=True), budget.mb_words(room, down=True)
    assert up != down and (up.endswith("MB") or not down.endswith("MB"))


def test_a_room_said_in_a_refusal_is_rounded_down(monkeypatch):
    monkeypatch.setattr(budget, "memory_limit_named", lambda: (None, None))
    assert budget.room_words(2**30, int(1.26 * 2**30)) == "the 1.2 GB available"
    assert budget.room_words(3 << 30, (2 << 30) - 1, mb=True) == "the 2047 MB available"


def test_a_room_said_in_mb_is_said_in_a_smaller_unit_below_a_mb(monkeypatch):
    # "more than the 0 MB available", of a room under a MB (the OpenMP threads' stacks'
    # refusal says both in MB, so that they compare).
    monkeypatch.setattr(budget, "memory_limit_named", lambda: (None, None))
    assert budget.room_words(MiB, 600 << 10, mb=True) == "the 600 kB available"
    assert budget.room_words(MiB, 900, mb=True) == "the 900 bytes available"
    assert budget.room_words(3 << 30, 2 << 30, mb=True) == "the 2048 MB available"


@pytest.mark.parametrize("size, said", [(0, "0 bytes"), (1, "1 byte"), (999, "999 bytes"), (1000, "1000 bytes"),
                                        (12_000, "11 kB"), (999_500, "976 kB"), (2**20 - 1, "1023 kB"),
                                        (350e6, "333 MB"), (1.2e9, "1.1 GB")])
def test_a_videos_kept_work_and_its_disks_room_below_a_kb_are_said_in_bytes(size, said):
    # A full disk's room was said "1 kB free" when none was: under a kB read as one.
    # An audit's: 999,500 bytes were said "1000 kB", in kB of 1000 bytes where the
    # memory's refusals (budget.size_words) say kB of 1024: said as those are.
    from ncnn_sr.video_pieces import amount

    assert amount(size) == said


@pytest.mark.parametrize("phrase, said", [
    ("8x6 picture", "an 8x6 picture"), ("80x60 picture", "an 80x60 picture"), ("800 px tile", "an 800 px tile"),
    ("11x4 picture", "an 11x4 picture"), ("18-bit JPEG 2000", "an 18-bit JPEG 2000"), ("11000x20 result", "an 11000x20 result"),
    ("16-bit AVIF", "a 16-bit AVIF"), ("1100x8 picture", "a 1100x8 picture"), ("110x8 picture", "a 110x8 picture"),
    ("6x8x3 array", "a 6x8x3 array"), ("118x4", "a 118x4"), ("(8, 6) array", "an (8, 6) array"),
    ("RGBA picture", "an RGBA picture"), ("HTTPResponse", "an HTTPResponse"), ("HDUpscaler", "an HDUpscaler"),
    ("MPO", "an MPO"), ("TIFF", "a TIFF"), ("HEIF", "a HEIF"), ("JPEG", "a JPEG"), ("U", "a U"), ("X", "an X"),
    ("uint8 array", "a uint8 array"), ("Unit", "a Unit"), ("Upscaler", "an Upscaler"), ("unsigned", "an unsigned"),
    ("array", "an array"), ("ndarray", "an ndarray"), ("mmap", "an mmap"), ("xarray.DataArray", "an xarray.DataArray"),
    ("torch.Tensor", "a torch.Tensor"), ("BytesIO", "a BytesIO"), ("IOBase", "an IOBase"), ("one", "a one"),
    ("hour", "an hour"), ("bytearray", "a bytearray"), ("European", "a European"), ("sound", "a sound")])
def test_a_phrase_takes_the_article_its_first_sound_asks(phrase, said):
    # An audit's: articles chosen by a first letter read "a 8x6 picture", "a
    # HTTPResponse", "a xarray.DataArray", "an U".
    assert errors.with_article(phrase) == said


@pytest.mark.skipif(os.name == "nt", reason="a POSIX shell's words")
@pytest.mark.parametrize("text", ["a\nb.png", "tab\there.png", "esc\x1b[31m.png", "caf\udce9\nx.png", "it's\r.png"])
def test_a_posix_word_of_a_name_with_a_control_character_reads_back_as_the_name(text):
    # In single quotes a line break stayed one, which a message then showed as \n:
    # 'a\nb.png', which a shell reads back as a backslash and an n.
    word = errors.shell_word(text)
    assert word.isprintable(), word
    said = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True, timeout=60).stdout
    assert said == os.fsencode(text)
